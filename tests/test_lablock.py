import signal
import subprocess
import sys
import textwrap
import threading

from lab.owned.lablock import LOCK_FILE, LabLock

TRY_LOCK = textwrap.dedent("""
    import fcntl, sys
    with open(sys.argv[1], "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print("free")
        except BlockingIOError:
            print("held")
""")


def _another_process_sees(root) -> str:
    return subprocess.run([sys.executable, "-c", TRY_LOCK, str(root / LOCK_FILE)],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_a_second_run_waits_saying_who_holds_the_lab_until_the_holder_dies(tmp_path, hold_lab_elsewhere):
    holder = hold_lab_elsewhere(tmp_path)
    said: list[str] = []
    waiter = LabLock(tmp_path, say=said.append, poll=0.05, say_every=0.2)
    thread = threading.Thread(target=waiter.acquire, daemon=True)
    thread.start()
    thread.join(1.0)
    assert thread.is_alive() and not waiter.held
    assert said and f"held by pid {holder.pid}" in said[0]
    holder.send_signal(signal.SIGKILL)   # no cleanup runs: the kernel drops the lock
    thread.join(5.0)
    assert waiter.held
    assert said[-1].startswith("the lab is ours after waiting")
    waiter.release()


def test_one_process_holds_the_lab_once_until_its_last_user_lets_go(tmp_path):
    first, second = LabLock(tmp_path), LabLock(tmp_path)
    first.acquire()
    thread = threading.Thread(target=second.acquire, daemon=True)
    thread.start()
    thread.join(2.0)
    assert not thread.is_alive(), "a second user in the same process waited for the first"
    first.release()
    assert _another_process_sees(tmp_path) == "held"
    second.release()
    assert _another_process_sees(tmp_path) == "free"
