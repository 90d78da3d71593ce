"""Call a compiled function from numpy with as little per-call Python as TensorFlow allows.

A standard trainer returns to Python every env step, so on a tiny MLP the fixed cost
of one ``tf.function`` call, not the arithmetic, sets the speed. Much of that cost is
Python work that a fixed input signature makes needless to repeat: binding the
arguments against the function type, converting each with ``tf.constant``, packing
the outputs; the rest is TensorFlow's runtime, which HostCall leaves as it is. The
measured split is recorded in ``results/tuning.md``.

[`HostCall`][a2c.agent.dispatch.HostCall] does the binding once: it checks each call's arrays against the
input signature (their shapes, so a wrong input still fails loudly; values are
converted to the signature's dtypes by numpy's rules, as the public call converts
them) and runs the traced function through TensorFlow's flat eager entry point. That
entry point is internal API, so it is looked up when the call is built; if this
TensorFlow lacks it, if the function returns anything but plain tensors, or if the
call happens somewhere the flat path does not apply (inside a graph, under a gradient
tape, with asynchronous eager execution, op callbacks such as
``tf.debugging.enable_check_numerics``, or ``tf.config.run_functions_eagerly``), the
public call is used instead.
Both paths run the same traced function: results are identical (tests check it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf


class HostCall:
    """A ``tf.function`` with a fixed ``input_signature``, called with numpy arrays.

    ``HostCall(fn)(*args)`` returns what ``fn(*args)`` returns (tensors in the same
    structure). ``args`` may be any nest that matches the signature (e.g. a
    NamedTuple of arrays). ``fast`` says whether the flat entry point is in use.
    """

    def __init__(self, function: Any) -> None:
        if function.input_signature is None:
            raise ValueError("HostCall needs a tf.function with an input_signature")
        self.function = function
        self.concrete = function.get_concrete_function()
        self._signature = tuple(function.input_signature)
        self._specs: list[tf.TensorSpec] = tf.nest.flatten(self._signature)
        # Fully known shapes are compared as tuples (cheap); others by compatibility.
        self._shapes = [tuple(s.shape.as_list()) if s.shape.is_fully_defined() else None for s in self._specs]
        self._dtypes = [s.dtype.as_numpy_dtype for s in self._specs]
        self._structure = self.concrete.structured_outputs
        self._single = isinstance(self._structure, tf.Tensor)
        plain = all(isinstance(x, tf.Tensor) for x in tf.nest.flatten(self._structure, expand_composites=False))
        self._flat_call = (
            _flat_entry_point(self.concrete, self._specs) if plain and self._structure is not None else None
        )

    @property
    def fast(self) -> bool:
        return self._flat_call is not None

    def __call__(self, *args: Any) -> Any:
        flat = _flatten_like(self._signature, args)
        if self._flat_call is None or not self._flat_call.applies():
            # Tensors in, as the signature says (run_functions_eagerly passes inputs as they are).
            tensors = [
                tf.cast(v, s.dtype) if tf.is_tensor(v) else tf.constant(np.asarray(v, d))
                for v, s, d in zip(flat, self._specs, self._dtypes)
            ]
            return self.function(*tf.nest.pack_sequence_as(self._signature, tensors))
        arrays = []
        for i, (value, shape, dtype, spec) in enumerate(zip(flat, self._shapes, self._dtypes, self._specs)):
            # A copy: the tensor may otherwise share the caller's buffer, which the caller reuses.
            array = np.array(value, dtype=dtype, copy=True)
            if array.shape != shape and not (shape is None and spec.shape.is_compatible_with(array.shape)):
                raise ValueError(
                    f"input {i}{f' ({spec.name})' if spec.name else ''} has shape {array.shape}, "
                    f"expected {tuple(spec.shape.as_list()) if spec.shape.rank is not None else '?'}"
                )
            arrays.append(array)
        outputs = self._flat_call.call(arrays)
        if self._single:
            return outputs[0]
        return tf.nest.pack_sequence_as(self._structure, list(outputs))


def _flatten_like(signature: Any, value: Any) -> list[Any]:
    """One value per TensorSpec of ``signature`` (a list may stand for an array)."""
    if isinstance(signature, tf.TensorSpec):
        return [value]
    if isinstance(signature, dict):
        if not isinstance(value, dict) or set(value) != set(signature):
            raise TypeError(f"expected a dict with keys {sorted(signature)}, got {type(value).__name__}")
        return [x for k in sorted(signature) for x in _flatten_like(signature[k], value[k])]
    if not isinstance(value, (tuple, list)) or len(value) != len(signature):
        raise TypeError(f"expected {len(signature)} arguments shaped like {signature}, got {type(value).__name__}")
    return [x for spec, v in zip(signature, value) for x in _flatten_like(spec, v)]


class FlatCall(NamedTuple):
    call: Callable[[list[np.ndarray]], Sequence[tf.Tensor]]
    applies: Callable[[], bool]  # False where the public call must be used


def _flat_entry_point(concrete: Any, specs: list[tf.TensorSpec]) -> FlatCall | None:
    """TensorFlow's own eager call of the traced (inference) function, minus the binding.

    This is what ``ConcreteFunction.__call__`` ends in (``AtomicFunction.call_flat`` ->
    ``Context.call_function`` -> ``execute.execute``), with everything that does not
    change between calls computed here once. None if this TensorFlow differs.
    """
    try:
        from tensorflow.python.eager import context, execute, record
        from tensorflow.python.framework import ops

        atomic = concrete._inference_function
        name = atomic.name.decode("utf-8")
        n_outputs = len(atomic.function_type.flat_outputs)
        captures = list(concrete.captured_inputs)
        if len(atomic.cached_definition.signature.input_arg) != len(specs) + len(captures):
            return None
        ctx = context.context()
        ctx.ensure_initialized()
        attrs = tuple(itertools.chain(*ctx.function_call_options.as_attrs().items()))
        device = ctx.device_name
        enums = [s.dtype.as_datatype_enum for s in specs]
        eager_tensor = ops.EagerTensor
        could_record = record.could_possibly_record
        ctx.op_callbacks  # noqa: B018 - present in this TensorFlow (checked by applies())
    except (ImportError, AttributeError, TypeError):
        return None

    def call(arrays: list[np.ndarray]) -> Sequence[tf.Tensor]:
        inputs = [eager_tensor(a, device, e) for a, e in zip(arrays, enums)]
        # execute.execute is looked up per call: TensorFlow swaps it when debug hooks are on.
        return execute.execute(name, num_outputs=n_outputs, inputs=inputs + captures, attrs=attrs, ctx=ctx)

    def applies() -> bool:
        # The inference function is only right outside tapes; a graph or an async
        # executor has its own call path; op callbacks (check_numerics, debug dumps)
        # hook the public path; tf.config.run_functions_eagerly(True) (for debugging)
        # means the Python body must run.
        return (
            ctx.executing_eagerly()
            and not ctx.is_async()
            and not could_record()
            and not ctx.op_callbacks
            and not tf.config.functions_run_eagerly()
        )

    return FlatCall(call, applies)
