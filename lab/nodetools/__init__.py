"""Tools that act inside a node: gdb batches, the sd-bus cookie, process accounting, PID capacity,
the runtime and the memory cgroups as an operator looks at them."""
