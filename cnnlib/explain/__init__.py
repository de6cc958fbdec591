"""cnnlib.explain: visualising and understanding convnets, on torch models on any device.

    from cnnlib import explain
    maps = explain.saliency(model, x, target)        # x: (N, C, H, W), target: int or (N,)

One calling convention: the model first, then the images x (N, C, H, W), then what is explained
(`target`: one class for every image as an int, or an (N,) integer tensor; a `layer` by its name
in model.named_modules()); tensors in, tensors out, on x's device. Each method borrows the model
in eval mode with its parameters frozen and gives it back as it was (training flags,
requires_grad, no hooks left); the caller's x is never changed; randomness comes from a private
generator (`seed=`), never from torch's global one. Bad arguments raise ValueError or TypeError
naming the argument.

The steps, one module each:

- `gradients`: `gradient`, `saliency` (Simonyan et al., 2014), `smoothgrad` (Smilkov et al.,
  2017), `integrated_gradients` (Sundararajan et al., 2017), `guided_backprop` (Springenberg et
  al., 2015), `grad_cam` (Selvaraju et al., 2017);
- `occluding`: `occlusion` (Zeiler & Fergus, 2014);
- `synthesis`: `class_visualisation` (Simonyan et al., 2014; Yosinski et al., 2015),
  `invert_features` (Mahendran & Vedaldi, 2015), `total_variation`, `gaussian_blur`;
- `adversarial`: `fgsm` (Goodfellow et al., 2015), `pgd` (Kurakin et al., 2017; Madry et al.,
  2018), `fooling_images` (Szegedy et al., 2014; Nguyen et al., 2015);
- `representations`: `first_layer_filters`, `filter_grid`, `layer_activations`, `features`,
  `nearest_neighbours`, `tsne` (van der Maaten & Hinton, 2008).

Plotting stays in `cnnlib.viz` (`plot_filters`, `plot_feature_maps`, `plot_attributions`).
"""

from .adversarial import *  # noqa: F403
from .gradients import *  # noqa: F403
from .occluding import *  # noqa: F403
from .representations import *  # noqa: F403
from .synthesis import *  # noqa: F403
