"""Links, navigation and committed datatypes from C (tests/vol/programs/links.c)."""

import esdm_hpc
from tests.vol.conftest import PROGRAMS, Site, report


def test_c_program_creates_follows_iterates_and_deletes_links(site: Site) -> None:
    result = site.run(str(PROGRAMS / "links"), "esdm://c/links")
    assert result.returncode == 0 and result.stdout.strip() == "ok", report(result)
    with esdm_hpc.open("esdm://c/links", config=site.config) as c:
        # the file creation property list asked for creation order
        assert c.keys() == ["alpha", "beta", "dangling", "types", "levels"]
        assert c.link("alpha/alias").target == "/zeta"  # the object's identity
        assert c.link("beta").kind == "soft"
        assert c["alpha/alias"][...].tolist() == [1, 2, 3, 4]
        assert c["levels"][...].tolist() == [-1, 0, 7]
