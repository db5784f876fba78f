"""Tools that act inside a node: gdb batches, the sd-bus cookie, process accounting, PID capacity."""
