"""Phase 1, parameters: the NumPy values copied into the port, read back equal bit for bit."""
from ..report import compare_arrays
from ..tolerance import EXACT


def check_parameters(run):
    run.torch.load(run.pairing, run.np.params)
    back = run.torch.values(run.pairing)
    for pair in run.pairing:
        run.add(compare_arrays("parameters", pair.numpy, run.torch_name(pair.numpy),
                               run.np.params[pair.numpy], back[pair.numpy], EXACT),
                expected=run.np.params[pair.numpy], actual=back[pair.numpy])
