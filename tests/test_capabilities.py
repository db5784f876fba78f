from lab.backends.docker import adapters as capabilities


def status_file(tmp_path, capbnd: str):
    p = tmp_path / "status"
    p.write_text(f"Name:\tx\nCapInh:\t0000000000000000\nCapBnd:\t{capbnd}\n")
    return str(p)


def test_missing_sys_resource_switches_adapters_on(tmp_path):
    path = status_file(tmp_path, "000001fffeffffff")   # this project's machines: bit 24 cleared
    assert not capabilities.has_capability(capabilities.CAP_SYS_RESOURCE, path)
    assert capabilities.sandbox_adapters(path) == ["oom-score", "containerd-userns"]


def test_full_capabilities_need_no_adapters(tmp_path):
    path = status_file(tmp_path, "000001ffffffffff")
    assert capabilities.sandbox_adapters(path) == []
