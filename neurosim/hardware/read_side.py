"""The read side of an analog array: what the dynamics see when they use the weights.

Programming (``device_models``) decides what the devices hold; reading them is imperfect too,
and EP reads every weight at every step of both phases. Three effects, per weight layer:

- **read noise**: each read of a weight w gives w + e with e ~ N(0, sigma^2), drawn anew at
  every use. For a matrix-vector product a = W u the sum of independent Gaussian errors is exactly
  Gaussian with standard deviation sigma ||u|| per output, so the noise is drawn on the n outputs
  (one number per neuron and step) instead of on the n x m devices: the same statistics at the
  cost of the activations, not of the array;
- **DAC**: the neuron outputs that drive the array (and the input pixels) pass through a
  digital-to-analog converter of ``dac_bits`` (uniform levels over the activation's range);
- **ADC**: the column result a = W u + b is digitised by an ``adc_bits`` converter over
  [-adc_range, adc_range] (clipped outside) before the neuron's nonlinearity.

A layer's neurons see the periphery of the weights that feed them: pre-activation n sums the
forward array W_n and the feedback array of layer n+1; each brings its own read noise, and the
DAC and ADC of neuron layer n are those of W_n's device. Implemented for the fully connected
models (prototypical and vector-field dynamics), whose step builds every pre-activation in one
place.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class LayerRead:
    """Read-side parameters of one weight layer."""

    noise_std: float = 0.0
    """Standard deviation of one read of a weight, in weight units."""
    dac_bits: int | None = None
    adc_bits: int | None = None
    adc_range: float = 4.0

    @property
    def active(self) -> bool:
        return bool(self.noise_std) or self.dac_bits is not None or self.adc_bits is not None


class ReadSide:
    """Per-layer read noise, DAC and ADC, with the generator that draws the read noise."""

    def __init__(self, layers: list[LayerRead], low: float, high: float, generator: torch.Generator) -> None:
        self.layers = layers
        self.low, self.high = low, high
        self.generator = generator
        self._input_sq: Tensor | None = None

    def dac(self, u: Tensor, n: int) -> Tensor:
        """Neuron outputs (or pixels) as the DAC of layer n drives them onto the array."""
        bits = self.layers[n].dac_bits
        if bits is None:
            return u
        return quantize(u, self.low, self.high, bits)

    def remember_input(self, x: Tensor) -> None:
        """||x||^2 per sample: the input drive is computed once per batch, but its read noise is
        drawn at every step."""
        self._input_sq = (x * x).sum(1, keepdim=True) if self.layers[0].noise_std else None

    def pre_activation(self, pre: Tensor, n: int, below: Tensor | None, above: Tensor | None,
                       gain: float, offset: float) -> Tensor:
        """The pre-activation gain (W u + b) + offset of neuron layer n after read noise and ADC.

        ``below`` is the (DAC'd) input of W_n (None for the first layer, whose input norm was
        remembered), ``above`` the input of the feedback array (None for the output layer).
        """
        layer = self.layers[n]
        variance = None
        if layer.noise_std:
            sq = self._input_sq if below is None else (below * below).sum(1, keepdim=True)
            if sq is not None:
                variance = sq * layer.noise_std ** 2
        if above is not None and n + 1 < len(self.layers) and self.layers[n + 1].noise_std:
            extra = (above * above).sum(1, keepdim=True) * self.layers[n + 1].noise_std ** 2
            variance = extra if variance is None else variance + extra
        if variance is not None:
            noise = torch.randn(pre.shape, generator=self.generator, device=pre.device, dtype=pre.dtype)
            pre = pre + noise * variance.sqrt() * gain
        if layer.adc_bits is not None:
            a = (pre - offset) / gain
            pre = quantize(a, -layer.adc_range, layer.adc_range, layer.adc_bits) * gain + offset
        return pre

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.generator.set_state(state["generator"])


def quantize(u: Tensor, low: float, high: float, bits: int) -> Tensor:
    """Nearest of 2^bits uniform levels over [low, high] (values outside are clipped)."""
    steps = 2 ** bits - 1
    scale = (high - low) / steps
    return ((u.clamp(low, high) - low) / scale).round_().mul_(scale).add_(low)
