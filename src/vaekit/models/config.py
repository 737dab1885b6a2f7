"""Model configs: a dataclass per family, its JSON round trip, one typed check of every field,
and the fields a conditional family adds (``ConditionalConfig``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from vaekit.data.labels import class_index
from vaekit.errors import VaekitError
from vaekit.schema import at_least, check_fields


@dataclass
class ModelConfig:
    """Fields every model config has. Subclasses add their own; all JSON round-trip."""

    model: ClassVar[str] = "base"
    input_shape: tuple[int, ...] = field(default=(1, 28, 28), metadata=at_least(1))
    latent_dim: int = field(default=16, metadata=at_least(1))

    #: True when encode/decode need ``cond`` (class labels): see ``ConditionalConfig``.
    conditional: ClassVar[bool] = False

    #: True for a family that models sequence data (``DataInfo.kind == "sequence"``: rows of
    #: token ids, decoded token by token); such data and the other families refuse each other
    #: with one line, and the image and table tools refuse such a model.
    sequences: ClassVar[bool] = False
    #: Training settings (``TrainConfig`` fields) this family gets unless the user sets them
    #: (a sequence VAE's KL annealing and free bits).
    train_defaults: ClassVar[dict[str, Any]] = {}
    #: Data settings (``DataConfig`` fields) this family gets unless set (a sequence VAE reads
    #: its data as tokenised molecules).
    data_defaults: ClassVar[dict[str, Any]] = {}
    #: Fields added after runs of this family were saved, and the value a saved config
    #: without one means: the behaviour those runs were trained with (``from_saved``).
    saved_defaults: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        check_fields(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every family's config checks its field types (``vaekit.schema``) before its own
        ``__post_init__`` compares values, without each family calling it."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is not None and not getattr(own, "checks_fields", False):
            def __post_init__(self: ModelConfig) -> None:
                check_fields(self)
                own(self)

            __post_init__.checks_fields = True  # type: ignore[attr-defined]
            cls.__post_init__ = __post_init__  # type: ignore[method-assign]

    @property
    def run_name(self) -> str:
        """What a run of this config is called by default (``runs/<data>-<run_name>``)."""
        return self.model

    @classmethod
    def data_options(cls, info: Any) -> dict[str, Any]:
        """Fields this family takes from the data besides ``input_shape`` (a sequence VAE's
        vocabulary), given the dataset's ``DataInfo``; used by ``runs.model_config_for``."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - {"model"}
        if unknown:
            raise VaekitError(f"model config: unknown field(s) {sorted(unknown)} for model '{cls.model}'")
        return cls(**{k: v for k, v in d.items() if k in known})  # lists become tuples in check_fields

    @classmethod
    def from_saved(cls, d: dict[str, Any]) -> ModelConfig:
        """``from_dict`` of a saved ``config.json`` model section: a field it lacks because it
        was written before the field existed gets ``saved_defaults``' value (the old behaviour),
        not the current default."""
        return cls.from_dict({**cls.saved_defaults, **d})


CONDITIONS = ("onehot", "embedding")
#: Which layers the label enters (``ConditionalConfig.label_layers``).
LABEL_LAYERS = ("first", "decoder", "all")


@dataclass
class ConditionalConfig(ModelConfig):
    """The fields a class-conditional model adds to its config (a mixin for any family).

    ``num_classes`` and ``class_names`` come from the training data's labels (the class
    names of a named dataset or an image folder's sub-folders; integer labels of a table or
    array give ``max + 1`` classes and no names), so a saved model alone knows which
    labels it accepts. ``condition``: how a label enters the networks, ``onehot`` or a
    learned ``embedding`` of ``embedding_dim`` values (``vaekit.nn.LabelEncoder``).
    ``label_layers``: where it enters them: ``first``, the first dense layer of each network
    (concatenated to its input); ``decoder`` (the default), also every later layer of the
    decoder, the output layer included, as a learned scale and shift of that layer's output
    (FiLM, ``vaekit.nn.LabelFiLM``); ``all``, every layer of both networks.
    """

    conditional: ClassVar[bool] = True
    num_classes: int = 0
    class_names: list[str] | None = None
    condition: str = "onehot"
    embedding_dim: int = 16
    label_layers: str = "decoder"

    def check_condition(self) -> None:
        """Validate the conditioning fields (called by a subclass's ``__post_init__``)."""
        if self.num_classes < 1:
            raise VaekitError(f"num_classes: a conditional model needs at least 1 class, got {self.num_classes}")
        if self.condition not in CONDITIONS:
            raise VaekitError(f"condition: '{self.condition}' is not one of {', '.join(CONDITIONS)}")
        if self.label_layers not in LABEL_LAYERS:
            raise VaekitError(f"label_layers: '{self.label_layers}' is not one of {', '.join(LABEL_LAYERS)}")
        if self.embedding_dim < 1:
            raise VaekitError(f"embedding_dim: must be at least 1, got {self.embedding_dim}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise VaekitError(f"class_names: {len(self.class_names)} names for num_classes={self.num_classes}")

    def class_index(self, label: int | str) -> int:
        """A label given by index (``5``, ``"5"``) or by class name (``"Sneaker"``) -> its index,
        or a one-line ``VaekitError`` naming the valid range and names."""
        return class_index(label, self.class_names, "label", self.num_classes)

    def class_name(self, k: int) -> str:
        return self.class_names[k] if self.class_names and 0 <= k < len(self.class_names) else str(k)
