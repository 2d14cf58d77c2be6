"""Every error ACTS raises on purpose.

Tree::

    ActsError                      root: the CLI prints its message on one line and exits 2
    ├── InputError                 the user asked for something that cannot be done
    │   ├── UnknownSymbolError     symbol not listed by the exchange / not in the data
    │   ├── UnknownFeatureError    feature name not in the registry
    │   ├── BadDateError           unparsable or empty date range
    │   ├── NoDataError            nothing recorded for the request (says what exists)
    │   └── FeatureError           a user feature raised or returned something not a number
    ├── DataError                  recorded or incoming data is not what it must be
    │   ├── MalformedMessageError  an exchange message that cannot be decoded
    │   ├── PrecisionError         a number that cannot be stored exactly
    │   └── CorruptSegmentError    a segment file that cannot be read
    └── ServiceError               a service ACTS depends on misbehaves
        ├── ExchangeError          REST/websocket failure talking to the exchange
        ├── SinkError              the minute-entry store (MongoDB, embedded) failed
        └── StorageError           the data dir cannot be written (disk full, permissions)

Core errors (sequencing, validation) never do I/O; sequencing problems are *values*
(``Gap``, ``StaleSnapshot``) returned by the sequencer, not exceptions.
"""

from __future__ import annotations

__all__ = [
    "ActsError",
    "InputError",
    "UnknownSymbolError",
    "UnknownFeatureError",
    "BadDateError",
    "NoDataError",
    "FeatureError",
    "DataError",
    "MalformedMessageError",
    "PrecisionError",
    "CorruptSegmentError",
    "ServiceError",
    "ExchangeError",
    "SinkError",
    "StorageError",
]


class ActsError(Exception):
    """Root of all deliberate ACTS errors; the message names the problem and the fix."""


class InputError(ActsError):
    pass


class UnknownSymbolError(InputError):
    pass


class UnknownFeatureError(InputError):
    pass


class BadDateError(InputError):
    pass


class NoDataError(InputError):
    pass


class FeatureError(InputError):
    pass


class DataError(ActsError):
    pass


class MalformedMessageError(DataError):
    pass


class PrecisionError(DataError):
    pass


class CorruptSegmentError(DataError):
    pass


class ServiceError(ActsError):
    pass


class ExchangeError(ServiceError):
    pass


class SinkError(ServiceError):
    pass


class StorageError(ServiceError):
    pass
