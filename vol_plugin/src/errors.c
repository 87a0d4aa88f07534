/*
 * The connector's own error class, so that an HDF5 error stack shows which
 * errors come from ESDM ("esdm VOL") rather than from the library, with the
 * Python exception's text as the message.
 */
#include "esdm_vol.h"

hid_t esdm_err_class       = H5I_INVALID_HID;
hid_t esdm_err_major       = H5I_INVALID_HID;
hid_t esdm_err_python      = H5I_INVALID_HID;
hid_t esdm_err_unsupported = H5I_INVALID_HID;
hid_t esdm_err_argument    = H5I_INVALID_HID;

herr_t
esdm_errors_register(void)
{
    if (esdm_err_class != H5I_INVALID_HID)
        return 0;
    if ((esdm_err_class = H5Eregister_class("esdm VOL", "esdm-hpc", "0.1")) < 0)
        return -1;
    esdm_err_major       = H5Ecreate_msg(esdm_err_class, H5E_MAJOR, "ESDM middleware");
    esdm_err_python      = H5Ecreate_msg(esdm_err_class, H5E_MINOR, "error in the esdm-hpc core");
    esdm_err_unsupported = H5Ecreate_msg(esdm_err_class, H5E_MINOR, "feature not supported yet");
    esdm_err_argument    = H5Ecreate_msg(esdm_err_class, H5E_MINOR, "bad argument");
    if (esdm_err_major < 0 || esdm_err_python < 0 || esdm_err_unsupported < 0 || esdm_err_argument < 0)
        return -1;
    return 0;
}

void
esdm_errors_unregister(void)
{
    /* Unregistering the class closes its messages as well. */
    if (esdm_err_class != H5I_INVALID_HID)
        H5Eunregister_class(esdm_err_class);
    esdm_err_class = esdm_err_major = esdm_err_python = H5I_INVALID_HID;
    esdm_err_unsupported = esdm_err_argument = H5I_INVALID_HID;
}
