"""``Optimizer``: parameter groups, per-parameter state, and torch's ``state_dict`` layout."""
import copy

from .. import backend
from ..tensor import Tensor


class Optimizer:
    """Holds ``param_groups`` (dicts with "params" and hyper-parameters) and ``state`` per parameter."""

    def __init__(self, params, defaults):
        self.defaults = defaults
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list.")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        self.state = {}
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        group = dict(group)
        group["params"] = [group["params"]] if isinstance(group["params"], Tensor) else list(group["params"])
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group.setdefault("initial_lr", group["lr"])
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def _parameters_with_grads(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p, p.grad.data, self.state.setdefault(id(p), {})

    def state_dict(self):
        """{"state": {index: {name: host array or number}}, "param_groups": [{..., "params": [indices]}]}."""
        index_of, groups, index = {}, [], 0
        for group in self.param_groups:
            entry = {k: v for k, v in group.items() if k != "params"}
            entry["params"] = []
            for p in group["params"]:
                index_of[id(p)] = index
                entry["params"].append(index)
                index += 1
            groups.append(entry)
        state = {index_of[key]: {name: backend.to_numpy(v) if hasattr(v, "shape") else v for name, v in value.items()}
                 for key, value in self.state.items() if key in index_of}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError("Optimizer state_dict does not match this optimizer's parameter groups "
                             "(different number of groups or parameters per group).")
        params = [p for group in self.param_groups for p in group["params"]]
        self.state = {}
        for index, value in state_dict["state"].items():
            p = params[int(index)]
            self.state[id(p)] = {name: backend.to_backend(v, p.backend).astype(p.dtype, copy=True)
                                 if hasattr(v, "shape") and getattr(v, "ndim", 0) > 0 else copy.copy(v)
                                 for name, v in value.items()}
        for group, saved in zip(self.param_groups, groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
