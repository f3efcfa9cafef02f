"""Record: a small immutable value class, the hand-written equivalent of a frozen dataclass.

Every call of mcalc imports the modules that define its records (the syntax tree, types,
rules, derivation steps), and building a frozen dataclass costs about 1.5 ms of a cold
call — a quarter of the budget that remains after Python and click start (issue #6). A
subclass lists its fields in `_fields` (also its `__slots__`) and assigns them in
`__init__` with `object.__setattr__` (or builds itself as its `fillable` twin); it then
compares, hashes and prints like the frozen dataclass it replaces, and assigning to a
field raises FrozenInstanceError.
"""
from __future__ import annotations

from operator import attrgetter


class Record:
    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # the fields' values at one C call (attrgetter of one name gives the value alone)
        get = attrgetter(*cls._fields) if cls._fields else (lambda record: ())
        cls._values_of = staticmethod(get if len(cls._fields) != 1 else
                                      (lambda record: (get(record),)))

    def _values(self) -> tuple:
        return self._values_of(self)

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self):
        return hash(self._values())

    def __repr__(self):
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__qualname__}({inner})"

    def __setattr__(self, name, value):
        from dataclasses import FrozenInstanceError
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        from dataclasses import FrozenInstanceError
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self):                       # copy, deepcopy and pickle
        return (type(self), self._values())


def fillable(cls: type) -> type:
    """A class of the same layout as the record class `cls` whose fields can be assigned.
    A record made by the thousand (a step, an equation) is built in its `__new__` as one
    of these, its fields assigned, then made a `cls`: an assignment to a frozen record's
    field calls a setter (a C call through a tuple of arguments), the twin's is the
    interpreter's own store, several times cheaper."""
    return type(f"_{cls.__name__}Fill", (Record,),
                {"__slots__": cls._fields, "_fields": cls._fields,
                 "__setattr__": object.__setattr__, "__delattr__": object.__delattr__})
