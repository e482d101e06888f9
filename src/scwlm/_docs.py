"""Shared parameter documentation (the scanpy way): one fragment per parameter, formatted in.

A function documents a parameter that several functions share by a ``{doc_name}`` placeholder in
its docstring and the decorator :func:`_doc_params`::

    @_doc_params(doc_copy=doc_copy)
    def fit(adata, copy=False):
        \"\"\"...

        Parameters
        ----------
        {doc_copy}
        \"\"\"

Fragments are written at the indentation of a numpydoc parameter list inside a function body
(four spaces for the name, eight for its description) and start without indentation, so that the
placeholder sits where the parameter name would. Everything else in the docstring is left as is
(only ``{name}`` placeholders of the given fragments are replaced; other braces are untouched).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["_doc_params"]


def _doc_params(**fragments: str) -> Callable[[F], F]:
    """Fill ``{name}`` placeholders of the decorated function's docstring with ``fragments``.

    Unlike :meth:`str.format`, braces that are not placeholders of a given fragment (e.g. in
    code examples or LaTeX) are kept; an unknown placeholder is left as is, and a fragment that
    is not used raises ``ValueError`` (it would be a documentation bug).

    Examples
    --------
    >>> @_doc_params(doc_x="x\\n        The input.")
    ... def f(x):
    ...     '''Parameters
    ...     ----------
    ...     {doc_x}
    ...     '''
    >>> print(f.__doc__.strip())
    Parameters
        ----------
        x
            The input.
    """

    def decorate(obj: F) -> F:
        doc = obj.__doc__
        if doc is None:  # running with python -OO
            return obj
        for name, text in fragments.items():
            placeholder = "{" + name + "}"
            if placeholder not in doc:
                raise ValueError(f"{obj.__qualname__}: docstring has no {placeholder} placeholder")
            doc = doc.replace(placeholder, text.strip("\n"))
        obj.__doc__ = doc
        return obj

    return decorate


# ----------------------------------------------------------------------------------- tl fragments
doc_adata_fit = """adata
        Annotated data matrix with a time label in ``.obs`` and an embedding in ``.obsm``."""

doc_time_key = """time_key
        Column of ``adata.obs`` with the time labels: numbers, labels that parse as numbers, or
        an ordered categorical."""

doc_basis = """basis
        Embedding in ``adata.obsm``; its first ``n_dims`` columns are modelled."""

doc_n_dims = """n_dims
        Number of leading coordinates (the paper uses 5 PCs)."""

doc_velocity_key = """velocity_key
        Embedding velocities in ``adata.obsm`` (see :func:`scwlm.pp.embedding_velocities`)."""

doc_friction = r"""friction
        ``"learnable"`` or a fixed value :math:`\gamma \ge 0`."""

doc_key_added = """key_added
        Key in ``adata.uns`` for the results. An existing entry under this key is replaced, and
        the ``adata.obsm`` entries recorded by :func:`scwlm.tl.rollout` for the old entry are
        removed (they belong to the old model)."""

doc_copy = """copy
        Work on (and return) a copy of ``adata`` instead of writing in place."""

doc_engine_config = """**engine_config
        Any :class:`~scwlm.WLMConfig` setting, e.g. ``hidden``, ``ffn``, ``p``, ``blur``,
        ``particles_per_batch``, ``ema``, ``progress``."""

doc_fit_key = """key
        The ``key_added`` of the fit in ``adata.uns`` (:func:`scwlm.tl.fit_mechanics` or
        :func:`scwlm.tl.leave_one_out`)."""

doc_n_cells = """n_cells
        Simulate a random subset of this many source cells (all by default)."""

doc_substeps = """substeps
        Integrator steps per model time step (default ``None``: the model's
        ``config.eval_substeps``, the setting its stored W1 was computed with)."""

doc_random_state_subset = """random_state
        Seed of the choice of the ``n_cells`` subset."""

# ----------------------------------------------------------------------------------- pl fragments
doc_show_save_ax = """ax
        Draw into these axes (else a new figure).
    show
        Show the figure (default: only with an interactive backend and when neither ``ax`` nor
        ``return_fig`` is given).
    save
        Save the figure: a path, or ``True`` for ``figures/<name>.png`` (``<name>`` the
        function's name).
    return_fig
        Return the figure (else the axes when ``ax`` was given, else ``None``)."""

doc_components = """components
        Two column indices to draw."""

doc_embedding_basis = """basis, n_neighbors
        Draw in this embedding of ``adata.obsm`` (e.g. ``"X_umap"``): predictions are placed by
        k-nearest-neighbour regression from the observed cells' (fit basis -> ``basis``) pairs,
        with ``n_neighbors`` neighbours (default ``None``: the components of the fit's basis)."""

doc_plot_returns = """Figure, Axes or None
        The figure with ``return_fig=True``; the axes when ``ax`` was given; else ``None``."""
