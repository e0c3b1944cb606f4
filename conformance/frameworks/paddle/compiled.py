"""Paddle's compiled mode (worker side only; docs/modes.md).

``to_static``: the clip of a ``paddle.nn.ClipGradBy*`` object on ``(parameter, gradient)``
pairs inside ``paddle.jit.to_static(fn, full_graph=True)``: AST conversion to a PIR program, no
SOT bytecode capture and so no fallback to dygraph for what it cannot convert (it raises). The
parameters are closed over by the converted function (as a user's ``self.weight``), so the
conversion turns each into the program's ``builtin.parameter`` (``need_clip`` true); the
gradients are its inputs. ``paddle.nn.utils.clip_grad_norm_`` / ``clip_grad_value_`` go the same
way and raise Paddle's "this API can only run in dynamic mode".

``static_program``: an optimizer step with ``grad_clip=`` (the suite's ``*.via_sgd`` forms) cannot
be written under ``to_static`` in Paddle 3.3: ``loss.backward()`` in the converted function raises
AttributeError ("'paddle.base.libpaddle.pir.Value' object has no attribute 'backward'"), and
``opt.step()`` / ``opt.minimize(loss)`` / ``opt.apply_gradients`` there build nothing or raise
(docs/modes.md). Those forms are compiled as Paddle's classic static graph instead: a
``paddle.static.Program`` built under ``paddle.enable_static()`` with ``opt.minimize(loss)``,
run once by a ``paddle.static.Executor``.

Compiled means compiled, checked on every call:
- the converted function must have traced a program (its ``program_cache``): with
  ``paddle.jit.enable_to_static(False)`` it would run its Python in dygraph, eagerly, and the
  call raises ``NotCompiled``;
- the traced program must compute something: a program with no operation but its inputs,
  parameters and outputs (no gradient to clip, or a "clip" that hands back its inputs) is
  ``NotCompiled``, not a pass.
"""

from __future__ import annotations

import paddle

#: operations that compute nothing: inputs, parameters, outputs, constants and list plumbing
_PLUMBING = {"pd_op.data", "builtin.parameter", "builtin.shadow_output", "builtin.combine",
             "builtin.split", "pd_op.full", "pd_op.full_int_array", "builtin.set_parameter"}


class NotCompiled(RuntimeError):
    """The compiled call ran without building a static program: it would have been eager."""


def _ops(program) -> list:
    return [op.name() for op in program.global_block().ops]


def _forget_traces() -> None:
    """Empty to_static's global maps of the programs being traced (parameter -> Value, in-place
    Values). Paddle empties a program's entry when its trace succeeds, not when the trace raises,
    and keys them by ``id(program)``: a later program at a reused address then found Values of a
    freed one, and the worker died in pir name_analysis (SIGSEGV/SIGFPE, 14 of 3,900 compiled
    cells of the first bundled run, each after cells whose trace raised). No trace is in flight
    here (one cell at a time), so emptying them after every call is safe."""
    from paddle.jit.dy2static import parameter_recorder as recorder
    recorder._global_parameter_recorder.params_dict.clear()
    recorder._global_parameter_recorder.tensor2value.clear()
    recorder._global_inplace_map.params_dict.clear()


def to_static(name: str, fn, grads: list):
    """``fn(grads)`` converted by ``paddle.jit.to_static(full_graph=True)`` (a fresh function per
    call: ``fn`` closes over this cell's parameters), checked to have run as a static program:
    its program cache must hold the traced program (a dygraph run traces none), and that program
    must compute something. ``fn`` itself is converted (not a wrapper calling it: the AST
    conversion of a closure called from another converted function left its parameters dygraph
    objects, and ClipGradByGlobalNorm then fails on them)."""
    static = paddle.jit.to_static(fn, full_graph=True)
    try:
        out = static(grads)
    finally:
        _forget_traces()
    cache = static.program_cache
    if len(cache) == 0:
        raise NotCompiled(f"paddle.jit.to_static(full_graph=True) of {name} traced no program "
                          "(paddle.jit.enable_to_static(False)?): the call ran in dygraph, eagerly")
    _, (concrete, _) = cache.last()
    ops = _ops(concrete.main_program)
    if not [o for o in ops if o not in _PLUMBING]:
        raise NotCompiled(f"paddle.jit.to_static(full_graph=True) of {name} built a program with no "
                          f"operation ({', '.join(ops) or 'empty'}): nothing was compiled")
    return out


def static_program(name: str, build, feed: dict, fetch: list):
    """Paddle's classic static graph: ``build()`` (under ``paddle.enable_static()``, inside a new
    Program) returns the variables to fetch by name; the program is run once by an Executor on
    ``feed`` in a scope of its own. Returns the fetched numpy arrays, in ``fetch`` order."""
    main, startup = paddle.static.Program(), paddle.static.Program()
    scope = paddle.static.Scope()
    place = paddle.CPUPlace() if paddle.get_device() == "cpu" else paddle.CUDAPlace(0)
    paddle.enable_static()
    try:
        with paddle.static.scope_guard(scope), paddle.static.program_guard(main, startup):
            if paddle.in_dynamic_mode():  # pragma: no cover - enable_static() failed to switch
                raise NotCompiled(f"{name}: paddle.enable_static() left dygraph on")
            variables = build()
            ops = _ops(main)
            if not [o for o in ops if o not in _PLUMBING]:
                raise NotCompiled(f"the static program of {name} has no operation: nothing was compiled")
            exe = paddle.static.Executor(place)
            exe.run(startup)
            return exe.run(main, feed=feed, fetch_list=[variables[k] for k in fetch])
    finally:
        paddle.disable_static()
