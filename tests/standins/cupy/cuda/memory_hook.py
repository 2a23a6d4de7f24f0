"""STAND-IN for ``cupy.cuda.memory_hook`` (tests only): the base class, so code defining a hook imports."""


class MemoryHook:
    name = "MemoryHook"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass
