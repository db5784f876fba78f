from lab.nodetools import pidspace


def test_pid_max_leaves_exactly_the_free_pids_asked_for():
    # No PID in use at or above 300: the limit is 300 + free.
    assert pidspace.pid_max_for([1, 50, 299], 1000) == 1300
    # Every PID in use below the limit takes a slot: the limit moves up past it.
    used = [1, 300, 301, 500, 5000]
    limit = pidspace.pid_max_for(used, 1000)
    free = (limit - pidspace.RESERVED_PIDS) - sum(1 for u in used if pidspace.RESERVED_PIDS <= u < limit)
    assert free == 1000 and limit == 1303


def test_pid_max_is_the_smallest_such_limit():
    used = list(range(300, 400)) + [1500]
    limit = pidspace.pid_max_for(used, 200)
    def free(n):
        return (n - 300) - sum(1 for u in used if 300 <= u < n)
    assert free(limit) == 200 and free(limit - 1) < 200


def test_per_namespace_pid_max_needs_linux_6_14():
    assert pidspace.kernel_has_per_namespace_pid_max("6.18.44-fc-v782")
    assert pidspace.kernel_has_per_namespace_pid_max("6.14.0")
    assert not pidspace.kernel_has_per_namespace_pid_max("6.13.9")
    assert not pidspace.kernel_has_per_namespace_pid_max("5.15.0-91-generic")
