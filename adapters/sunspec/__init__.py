"""SunSpec over Modbus: model definitions, point codec, model decode/encode and discovery.

Pure code (no Modbus client here): discovery works over any ``RegisterReader`` and the
Modbus bridge supplies one. Definitions come from the official JSON models in pysunspec2.

The scan coroutine is exported here as ``scan_device``: the name ``scan`` belongs to the
``adapters.sunspec.scan`` module (presentation), and importing that module would rebind a
package attribute called ``scan``. ``adapters.sunspec.discovery.scan`` is the same function.
"""

from __future__ import annotations

from adapters.sunspec.codec import ScaleFactorError, decode_value, encode_value, scale, unscale
from adapters.sunspec.decode import (
    DecodedGroup,
    DecodedModel,
    ModelLengthError,
    decode_model,
    encode_model,
    point_address,
)
from adapters.sunspec.discovery import (
    SUNS_BASES,
    ChainChangedError,
    ChainError,
    ChainTooLongError,
    ModelLocation,
    ModelOverrunError,
    NoSunSpecError,
    RegisterReader,
    RegisterReadError,
    ScanResult,
    find_base,
    plan_reads,
    read_all_models,
    read_chain,
    read_models,
)
from adapters.sunspec.discovery import scan as scan_device
from adapters.sunspec.models import (
    GroupDef,
    ModelDef,
    ModelDefinitionError,
    PointDef,
    SunSpecDecodeError,
    SunSpecEncodeError,
    SunSpecError,
    UnknownModelError,
    bit_names,
    known_model_ids,
    load_model,
    symbol_name,
)

__all__ = [
    "SUNS_BASES",
    "ChainChangedError",
    "ChainError",
    "ChainTooLongError",
    "DecodedGroup",
    "DecodedModel",
    "GroupDef",
    "ModelDef",
    "ModelDefinitionError",
    "ModelLengthError",
    "ModelLocation",
    "ModelOverrunError",
    "NoSunSpecError",
    "PointDef",
    "RegisterReadError",
    "RegisterReader",
    "ScaleFactorError",
    "ScanResult",
    "SunSpecDecodeError",
    "SunSpecEncodeError",
    "SunSpecError",
    "UnknownModelError",
    "bit_names",
    "decode_model",
    "decode_value",
    "encode_model",
    "encode_value",
    "find_base",
    "known_model_ids",
    "load_model",
    "plan_reads",
    "point_address",
    "read_all_models",
    "read_chain",
    "read_models",
    "scale",
    "scan_device",
    "symbol_name",
    "unscale",
]
