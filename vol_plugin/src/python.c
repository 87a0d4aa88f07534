/*
 * Python for the connector: the host's interpreter when the application is
 * Python (h5py), an embedded one when it is C or Fortran.
 *
 * Every callback brackets its Python work with esdm_enter/esdm_leave, which
 * take the GIL with PyGILState_Ensure: that is a no-op re-entry under h5py
 * (which holds the GIL while it calls HDF5) and a real acquisition in an
 * embedded interpreter, whose GIL is released right after start-up so that
 * any application thread may call HDF5.
 */
#include "esdm_vol.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdlib.h>

/* Set by the Makefile: the virtual environment's interpreter (its
 * pyvenv.cfg makes the venv's site-packages importable), the source tree
 * that holds esdm_hpc, and the soname of the libpython this was linked to. */
#ifndef ESDM_VOL_PYTHON
#define ESDM_VOL_PYTHON ""
#endif
#ifndef ESDM_VOL_PYTHONPATH
#define ESDM_VOL_PYTHONPATH ""
#endif
#ifndef ESDM_VOL_LIBPYTHON
#error "define ESDM_VOL_LIBPYTHON, the soname of libpython (the Makefile does)"
#endif

static PyObject *bridge;          /* esdm_hpc.vol.bridge */
static bool      host_is_python;  /* the interpreter existed before the connector looked */
static bool      embedded;        /* the connector started the interpreter */
static bool      looked;

static const char *
setting(const char *variable, const char *built_in)
{
    const char *value = getenv(variable);
    return value && *value ? value : built_in;
}

static int
start_interpreter(void)
{
    PyStatus status;
    PyConfig config;

    /* HDF5 dlopens plugins RTLD_LOCAL, so the libpython this library pulled
     * in is invisible to the extension modules Python loads next (numpy,
     * mpi4py), which expect its symbols to be global. Promote it. */
    if (!dlopen(ESDM_VOL_LIBPYTHON, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) {
        esdm_error(esdm_err_python, "esdm VOL: cannot make %s global (%s)", ESDM_VOL_LIBPYTHON,
                   dlerror());
        return -1;
    }

    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0; /* SIGINT, SIGPIPE stay the application's */
    config.configure_c_stdio       = 0; /* and so does the buffering of its stdout */
    config.parse_argv              = 0;
    const char *python = setting("ESDM_VOL_PYTHON", ESDM_VOL_PYTHON);
    if (*python) {
        status = PyConfig_SetBytesString(&config, &config.executable, python);
        if (PyStatus_Exception(status))
            goto failed;
    }
    status = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(status))
        goto failed;
    PyConfig_Clear(&config);
    embedded = true;

    PyEval_SaveThread();
    return 0;

failed:
    esdm_error(esdm_err_python, "esdm VOL: cannot start Python with %s: %s",
               *python ? python : "the default interpreter",
               status.err_msg ? status.err_msg : "unknown error");
    PyConfig_Clear(&config);
    return -1;
}

/* esdm_hpc.vol.bridge, from the environment or else from the source tree
 * ESDM_VOL_PYTHONPATH names (a checkout that is not installed). GIL held. */
static PyObject *
import_bridge(void)
{
    PyObject *module = PyImport_ImportModule("esdm_hpc.vol.bridge");
    if (module || !PyErr_ExceptionMatches(PyExc_ImportError))
        return module;
    const char *tree = setting("ESDM_VOL_PYTHONPATH", ESDM_VOL_PYTHONPATH);
    if (!*tree)
        return NULL;
    PyErr_Clear();
    PyObject *path  = PySys_GetObject("path"); /* borrowed */
    PyObject *entry = PyUnicode_DecodeFSDefault(tree);
    if (path && entry && PyList_Append(path, entry) == 0)
        module = PyImport_ImportModule("esdm_hpc.vol.bridge");
    Py_XDECREF(entry);
    return module;
}

void
esdm_python_note_host(void)
{
    if (!looked) {
        host_is_python = Py_IsInitialized();
        looked         = true;
    }
}

bool
esdm_python_gone(void)
{
    esdm_python_note_host();
    return (host_is_python || embedded) && !Py_IsInitialized();
}

int
esdm_enter(PyGILState_STATE *gil)
{
    esdm_python_note_host();
    if (!Py_IsInitialized()) {
        if (host_is_python || embedded) {
            /* e.g. HDF5 closing files from an atexit handler after Python's own */
            esdm_error(esdm_err_python, "esdm VOL: the Python interpreter has already shut down");
            return -1;
        }
        if (start_interpreter() < 0)
            return -1;
    }
    *gil = PyGILState_Ensure();
    if (!bridge && !(bridge = import_bridge())) {
        esdm_python_error("importing esdm_hpc.vol.bridge (see `esdm vol-env` for the "
                          "environment the connector needs)");
        PyGILState_Release(*gil);
        return -1;
    }
    return 0;
}

void
esdm_leave(PyGILState_STATE gil)
{
    PyGILState_Release(gil);
}

PyObject *
esdm_call_at(esdm_site_t site, const char *function, const char *format, ...)
{
    va_list   arguments;
    PyObject *args, *callable, *result = NULL;

    va_start(arguments, format);
    args = Py_VaBuildValue(format, arguments);
    va_end(arguments);
    if (args && !PyTuple_Check(args)) {
        PyObject *tuple = PyTuple_Pack(1, args);
        Py_DECREF(args);
        args = tuple;
    }
    if (!args) {
        esdm_python_error_at(site, function);
        return NULL;
    }
    if ((callable = PyObject_GetAttrString(bridge, function))) {
        /* No cyclic collection while the core works: under h5py the caller
         * holds h5py's lock, which deallocating an h5py object takes, so a
         * collection in a thread the core starts or waits for (its lease
         * keeper, its writers) would wait for the caller, which waits for it. */
        int collecting = PyGC_Disable();
        result         = PyObject_CallObject(callable, args);
        if (collecting)
            PyGC_Enable();
        Py_DECREF(callable);
    }
    Py_DECREF(args);
    if (!result)
        esdm_python_error_at(site, function);
    return result;
}

PyObject *
esdm_view(const void *buf, size_t size, bool writable)
{
    static char nothing; /* memoryviews want an address even for zero bytes */
    PyObject   *view = PyMemoryView_FromMemory((char *)(size ? buf : &nothing), (Py_ssize_t)size,
                                               writable ? PyBUF_WRITE : PyBUF_READ);
    if (!view)
        esdm_python_error("creating a memoryview");
    return view;
}

int
esdm_view_release(PyObject *view, const char *operation)
{
    PyObject *done = PyObject_CallMethod(view, "release", NULL);
    Py_DECREF(view);
    if (!done) {
        /* Someone kept an array over memory the application owns. */
        esdm_python_error(operation);
        return -1;
    }
    Py_DECREF(done);
    return 0;
}

void
esdm_python_error_at(esdm_site_t site, const char *operation)
{
#define PUSH(...)                                                                                  \
    H5Epush2(H5E_DEFAULT, site.file, site.func, site.line, esdm_err_class, esdm_err_major,         \
             esdm_err_python, __VA_ARGS__)
    PyObject   *type, *value, *traceback, *text = NULL;
    const char *kind, *message = NULL;

    PyErr_Fetch(&type, &value, &traceback);
    if (!type) {
        PUSH("esdm VOL: %s failed without a Python exception", operation);
        return;
    }
    PyErr_NormalizeException(&type, &value, &traceback);
    if (getenv("ESDM_VOL_TRACEBACK"))
        PyErr_Display(type, value, traceback);
    kind = ((PyTypeObject *)type)->tp_name;
    if (value && (text = PyObject_Str(value)))
        message = PyUnicode_AsUTF8(text);
    if (!message) {
        PyErr_Clear();
        message = "(no message)";
    }
    /* h5py turns "errno = N" in an error message into the matching OSError
     * subclass (FileNotFoundError for 'a' mode, say), as for native files. */
    if (PyErr_GivenExceptionMatches(type, PyExc_FileNotFoundError))
        PUSH("esdm VOL: %s: %s: %s (errno = 2)", operation, kind, message);
    else
        PUSH("esdm VOL: %s: %s: %s", operation, kind, message);
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
#undef PUSH
}

void
esdm_python_shutdown(void)
{
    /* The embedded interpreter is deliberately not finalized: HDF5 terminates
     * from MPI_Finalize or atexit, where tearing down mpi4py and the core's
     * threads could hang, and the process is about to end anyway. */
    if (bridge && Py_IsInitialized()) {
        PyGILState_STATE gil = PyGILState_Ensure();
        Py_CLEAR(bridge);
        PyGILState_Release(gil);
    }
}
