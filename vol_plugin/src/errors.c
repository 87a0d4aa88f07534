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

/* HDF5 1.14.5 pushes its major message H5E_VOL as a minor one where the
 * deprecated H5R and H5O calls refuse a connector other than the native one
 * (H5Rcreate of a region reference; H5Oget_info1 and kin in a stock HDF5).
 * Clearing an entry drops a reference on a minor message outside the
 * library's own range of minor messages, which H5E_VOL is, and none was taken
 * for it: after two such refusals the message is gone, the next clear of the
 * error stack stops half-way and the one after it crashes on the entries it
 * left without their strings. So the connector holds references on H5E_VOL
 * to pay for those drops: a reserve at start, for copies of the stack the
 * application makes, and more before every refusal can happen (each follows
 * the class query, esdm_get_conn_cls); it gives them back at the end. */
#define HOLD_AT_START  4096
#define HOLD_PER_QUERY 4
#define HOLD_AT_MOST   (1u << 22) /* what giving them back costs at exit: some 80 ms */

static unsigned held; /* references on H5E_VOL the connector took */

static void
hold(unsigned n)
{
    for (; n; n--)
        if (H5Iinc_ref(H5E_VOL) > 0)
            held++;
}

void
esdm_errors_guard(void)
{
    /* H5Iinc_ref clears the error stack: not while it explains a failure */
    if (held < HOLD_AT_MOST && H5Eget_num(H5E_DEFAULT) == 0)
        hold(HOLD_PER_QUERY);
}

herr_t
esdm_errors_register(void)
{
    if (esdm_err_class != H5I_INVALID_HID)
        return 0;
    hold(HOLD_AT_START);
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
    /* Pay for the drops the entries still on the stack will cost, then give
     * the references back; if drops used some of them, the last one given
     * back frees H5E_VOL, as its last drop would have without the connector,
     * and the rest fail quietly. */
    H5Eclear2(H5E_DEFAULT);
    H5E_BEGIN_TRY /* the failure that says the message is gone is expected: no print */
    {
        for (; held; held--)
            if (H5Idec_ref(H5E_VOL) < 0)
                break;
    }
    H5E_END_TRY
    held = 0;
    H5Eclear2(H5E_DEFAULT);
    esdm_err_class = esdm_err_major = esdm_err_python = H5I_INVALID_HID;
    esdm_err_unsupported = esdm_err_argument = H5I_INVALID_HID;
}
