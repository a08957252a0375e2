"""``python -m compare port NUMPY TORCH``: check your own port against its NumPy original.

    python -m compare port my_numpy_net.py:make_net my_torch_net.py:Net
    python -m compare port examples/layer_net/numpy_net.py:make_net \\
                           examples/layer_net/torch_net.py:make_net --json out/port.json
    python -m compare port numpy_impl.functions torch_impl.functions   # twins by name

Exit status: 0 parity holds, 1 it does not, 2 the check cannot run.
"""
import os
from pathlib import Path

from ..port.data import BATCH_DEFAULTS
from ..port.targets import PortSetupError
from .output import print_report, write_json
from .status import CannotRun


def add_parsers(sub):
    add_port_parser(sub)
    add_record_parser(sub)


def add_port_parser(sub):
    p = sub.add_parser("port", help="check a NumPy model against its torch port, layer by layer",
                       description=__doc__.split("\n")[0])
    p.add_argument("numpy", metavar="NUMPY",
                   help="the NumPy model: path/to/file.py:name or package.module:name "
                        "(a class or a zero-argument function returning the model), or a "
                        "golden file made by 'python -m compare record'; a module without "
                        ":name (file.py or package.module) compares its functions with the "
                        "torch module's, twin by twin")
    p.add_argument("torch", metavar="TORCH", help="the torch port, in the same form")
    p.add_argument("--data", default=None, metavar="mnist|random|FILE.npz",
                   help="the batches, drawn by the book's stream: MNIST (default), seeded noise, "
                        "or your own arrays x (N, ...) and t (class indices, one-hot rows or "
                        "real targets) in a .npz file")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 100)")
    p.add_argument("--seed", type=int, default=None, help="seed of the batches and the directions (default 0)")
    p.add_argument("--dtype", choices=("float64", "float32"), default=None,
                   help="the run's dtype (default: the NumPy parameters')")
    p.add_argument("--loss", default=None,
                   metavar="cross_entropy|book|model|NAME|FILE.py:fn",
                   help="the torch side's loss: F.cross_entropy of the scores (default; for "
                        "a port of one output against 0/1 targets, the binary loss that gives "
                        "the NumPy loss, said in a note), the "
                        "book's -log(softmax + 1e-7), the port's own loss(x, t), a "
                        "torch.nn.functional loss by name (mse_loss, l1_loss, nll_loss, "
                        "binary_cross_entropy, binary_cross_entropy_with_logits, kl_div, ...) "
                        "of the scores and t, or a function fn(output, t); t is converted to "
                        "the targets the loss takes")
    p.add_argument("--labels", choices=("one-hot", "index"), default=None,
                   help="class labels handed to both sides (default one-hot, as the book's "
                        "scripts; with --data FILE.npz, t as stored)")
    p.add_argument("--param-map", default=None, metavar="W1=fc1.weight,...",
                   help="pair parameters by hand; a torch name may end in .T or .permute(...) "
                        "(a channels-last kernel: conv.weight.permute(2,3,1,0))")
    p.add_argument("--input-shape", default=None, metavar="784 | 1,28,28",
                   help="one sample's shape (default: from the first parameter)")
    p.add_argument("--numpy-kwargs", default=None, metavar="KEY=VALUE,...",
                   help="keywords for every call of the NumPy loss, values as Python literals "
                        "(cs231n's reg=0.05); a keyword the loss does not take is refused")
    p.add_argument("--numpy-layout", choices=("batch-first", "features-first"), default=None,
                   help="the NumPy model's layout: inputs (examples, features) and W (in, out), "
                        "or (features, examples) and W (out, in) as the deeplearning.ai course "
                        "(default: detected from the parameters, b1 (n_h, 1))")
    p.add_argument("--numpy-gradient", choices=("auto", "backprop", "numerical"), default="auto",
                   help="the NumPy gradient: its gradient() when it has one (auto), or central "
                        "differences of its loss")
    p.add_argument("--directions", type=int, default=4,
                   help="random directions per parameter in the numerical check (default 4)")
    p.add_argument("--locate", choices=("failing", "all", "none"), default="failing",
                   help="element-by-element differences where a direction fails (default), "
                        "everywhere, or nowhere")
    p.add_argument("--steps", type=int, default=None,
                   help="also train both sides this many steps side by side, on the same batches")
    p.add_argument("--lr", type=float, default=None, help="learning rate of --steps (default 0.1)")
    p.add_argument("--time-size", type=int, default=None, metavar="T",
                   help="with --data FILE.npz holding a 1-D integer corpus: the steps of each "
                        "window, cut as the book's RnnlmTrainer cuts them (--batch streams); "
                        "with --steps K, K consecutive windows, the state carried")
    p.add_argument("--max-grad-norm", type=float, default=None, metavar="G",
                   help="with a corpus and --steps: the book's clip_grads on the NumPy gradients, "
                        "torch.nn.utils.clip_grad_norm_ on the port's")
    p.add_argument("--numpy-optimizer", default=None, metavar="FILE.py:name",
                   help="an object with update(params, grads), or step(params, grads) (a class "
                        "or factory; given lr= when it takes one); default plain SGD")
    p.add_argument("--torch-optimizer", default=None, metavar="FILE.py:name",
                   help="a function of the port's parameters (or of the port, its first "
                        "argument named model) returning a torch.optim.Optimizer (or one and a "
                        "scheduler); default torch.optim.SGD")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the report as JSON")
    p.add_argument("--report", type=Path, default=None, metavar="DIR",
                   help="write a Markdown page and a figure of the error per layer")


DEFAULTS = {**BATCH_DEFAULTS, "lr": 0.1}
RECORDED = ("data", "batch", "seed", "dtype", "labels", "input_shape", "steps", "lr")
# recorded with a corpus's windows, and agreed with as the others are
WINDOW_OPTIONS = ("time_size", "max_grad_norm")


def resolve_options(args, golden=None):
    """The options of the run: a golden file's own where not given, the defaults elsewhere;
    one given against the file's is refused."""
    given = {k: getattr(args, k, None) for k in RECORDED + WINDOW_OPTIONS}
    if golden is not None:
        given = golden.agree(given)
    args.batch_given = given.get("batch") is not None  # else fitted to a small file's rows
    from ..port.data import is_data_file
    for key, value in DEFAULTS.items():
        # a file's labels are handed on as stored unless --labels converts them
        if given.get(key) is None and not (key == "labels" and is_data_file(given.get("data"))):
            given[key] = value
    for key, value in given.items():
        setattr(args, key, value)
    return args


def check_options(args):
    from ..port.losses import resolve_loss
    from ..port.targets import PortSetupError
    if getattr(args, "loss", None) is not None:
        resolve_loss(args.loss)  # a bad --loss is refused before the data loads
    if args.directions < 1:
        raise PortSetupError(f"--directions must be at least 1, got {args.directions}")
    check_seed_option(args)
    if args.batch < 1:
        raise PortSetupError(f"--batch must be at least 1, got {args.batch}")
    if args.steps is not None and args.steps < 1:
        raise PortSetupError(f"--steps must be at least 1, got {args.steps}")
    if not (args.lr > 0 and args.lr < float("inf")):
        raise PortSetupError(f"--lr must be a finite positive number, got {args.lr}")
    time_size, max_norm = getattr(args, "time_size", None), getattr(args, "max_grad_norm", None)
    if time_size is not None and time_size < 1:  # 'record' has neither option
        raise PortSetupError(f"--time-size must be at least 1, got {time_size}")
    if max_norm is not None and not (0 < max_norm < float("inf")):
        raise PortSetupError(f"--max-grad-norm must be a finite positive number, got {max_norm}")
    if args.steps is None and args.numpy_optimizer:
        raise PortSetupError("--numpy-optimizer needs --steps N (one batch is checked without "
                             "an update)")


def check_seed_option(args):
    from numpy_impl.validation import check_seed
    try:
        check_seed(args.seed, "--seed")
    except (TypeError, ValueError) as exc:
        raise PortSetupError(str(exc)) from exc


def check_outputs(args):
    """Where ``--json``, ``--report`` and ``--out`` will write, checked before any work: a
    path nothing can be written to is a request the command cannot serve (exit status 2),
    not a traceback after the verdict. Their folders are made here."""
    for option in ("json", "out"):
        path = getattr(args, option, None)
        if path is not None:
            if path.is_dir():
                raise PortSetupError(f"--{option} {path} is a folder; give a file path")
            _writable_folder(path.parent, f"--{option} {path}")
    if getattr(args, "report", None) is not None:
        _writable_folder(args.report, f"--report {args.report}")


def _writable_folder(folder, option):
    if folder.exists() and not folder.is_dir():
        raise PortSetupError(f"{option}: {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PortSetupError(f"{option}: cannot make the folder {folder} "
                             f"({exc.strerror or exc})") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PortSetupError(f"{option}: the folder {folder} is not writable")


def _batch_options(args):
    return {k: getattr(args, k) for k in ("data", "batch", "seed", "labels", "input_shape")}


def dataset(args, params, dtype):
    """The rows the batches are drawn from, and ``args.batch`` fitted to them
    (``fit_batch``: a default larger than a small file is lowered, and said)."""
    from ..port.data import command_dataset, fit_batch
    x, t = command_dataset(params, dtype, **_batch_options(args))
    args.batch, args.batch_note = fit_batch(args.batch, x.shape[0], args.data,
                                            given=args.batch_given)
    return x, t


# what only a model check uses, with its parser default: given with twins, it is refused
MODEL_ONLY = {"data": None, "batch": None, "loss": None, "labels": None,
              "param_map": None, "input_shape": None, "numpy_gradient": "auto", "directions": 4,
              "locate": "failing", "steps": None, "lr": None, "numpy_optimizer": None,
              "torch_optimizer": None, "report": None, "numpy_kwargs": None, "numpy_layout": None,
              "time_size": None, "max_grad_norm": None}


def cmd_twins(args):
    """Two modules without :name: their functions, twin by twin (``compare.port.twins``)."""
    from ..port.targets import PortSetupError
    from ..port.twins import check_twins
    for key, default in MODEL_ONLY.items():
        if getattr(args, key) != default:
            raise PortSetupError(f"--{key.replace('_', '-')} applies to models, not to twins by name")
    check_seed_option(args)
    report = check_twins(args.numpy, args.torch, dtype=args.dtype or "float64",
                         seed=0 if args.seed is None else args.seed, device=args.device)
    print_report(report.to_text(), report.verdict())
    if args.json is not None:
        print(f"wrote {write_json(args.json, report.to_dict())}")
    if report.nothing_checked:
        raise PortSetupError(f"{report.verdict()}; nothing was compared")
    return report.passed, report.verdict()


def cmd_port(args):
    from ..port.twins import wants_twins
    check_outputs(args)
    if wants_twins(args.numpy, args.torch):
        return cmd_twins(args)
    from ..port import check_port
    from ..port.data import as_input, first_batch
    from ..port.reference import GoldenFile, is_golden_path, reference_side
    from ..port.targets import load_attribute, load_target

    golden = GoldenFile(args.numpy) if is_golden_path(args.numpy) else None
    resolve_options(args, golden)
    check_options(args)
    numpy_model = golden if golden is not None else load_target(args.numpy, "numpy side")
    torch_model = load_target(args.torch, "torch side")
    np_opt = t_opt = None
    if args.numpy_optimizer:
        np_opt = load_attribute(args.numpy_optimizer, "numpy optimizer", "optimizer")
    if args.torch_optimizer:
        t_opt = load_attribute(args.torch_optimizer, "torch optimizer", "optimizer")
    reference = reference_side(numpy_model, args.dtype, args.numpy_kwargs, args.numpy_layout)
    options = dict(dtype=args.dtype, loss=args.loss, param_map=args.param_map, device=args.device,
                   numpy_gradient=args.numpy_gradient, directions=args.directions,
                   locate=args.locate, numpy_kwargs=args.numpy_kwargs,
                   numpy_layout=args.numpy_layout)
    shape_params = getattr(reference, "batch_params", reference.params)
    corpus = _corpus(args, golden)
    if corpus is not None:
        report = _corpus_check(args, numpy_model, torch_model, corpus, np_opt, t_opt, options)
    elif args.steps is None:
        if golden is not None:
            xb, tb = golden.x, golden.t
        else:
            xb, tb = first_batch(*dataset(args, shape_params, reference.dtype.name),
                                 batch=args.batch, seed=args.seed)
        report = check_port(numpy_model, torch_model, as_input(xb, reference.dtype), tb,
                            seed=args.seed, torch_optimizer=t_opt, lr=args.lr, **options)
    else:
        from ..port.training import check_training
        x, t = dataset(args, shape_params, reference.dtype.name)
        report = check_training(numpy_model, torch_model, x, t, steps=args.steps,
                                batch_size=args.batch, lr=args.lr, seed=args.seed,
                                numpy_optimizer=np_opt, torch_optimizer=t_opt,
                                progress=not args.no_progress, **options)
    report.settings.update({"numpy": args.numpy, "torch": args.torch, "data": args.data,
                            "seed": args.seed, "labels": args.labels})
    if getattr(args, "batch_note", None):
        report.notes.append(args.batch_note)
    print_report(report.to_text(), report.verdict())
    if args.json is not None:
        print(f"wrote {write_json(args.json, report.to_dict())}")
    if args.report is not None:
        from ..port.figure import write_report
        print(f"wrote {write_report(report, args.report)}")
    return report.passed, report.verdict()


def _corpus(args, golden):
    """The corpus of ``--data FILE.npz`` where it holds one, the options it takes checked."""
    from ..port.corpus import read_corpus
    if golden is not None and (golden.meta.get("training") or {}).get("windows"):
        # the file holds its windows: trained over them with --steps, else its first one
        return None if args.steps is None else "golden"
    corpus = None if golden is not None else read_corpus(args.data)
    if corpus is None:
        for option in ("time_size", "max_grad_norm"):
            if getattr(args, option) is not None:
                raise PortSetupError(f"--{option.replace('_', '-')} takes --data FILE.npz holding a "
                                     f"1-D integer array 'corpus'")
        return None
    if args.time_size is None:
        raise PortSetupError(f"--data {args.data} holds a corpus: give --time-size T (the steps "
                             f"of each window)")
    if args.max_grad_norm is not None and args.steps is None:
        raise PortSetupError("--max-grad-norm needs --steps N (one window is checked without "
                             "an update)")
    return corpus


def _corpus_check(args, numpy_model, torch_model, corpus, np_opt, t_opt, options):
    from ..port import check_port
    from ..port.corpus import windows
    from ..port.training import check_training
    if args.steps is None:
        x, t = windows(corpus, args.batch, args.time_size, 1)[0]
        return check_port(numpy_model, torch_model, x, t, seed=args.seed, torch_optimizer=t_opt,
                          lr=args.lr, **options)
    if isinstance(corpus, str):  # "golden": the windows the file was trained on
        corpus = None
    return check_training(numpy_model, torch_model, corpus, None, steps=args.steps,
                          batch_size=args.batch, time_size=args.time_size,
                          max_grad_norm=args.max_grad_norm, lr=args.lr, seed=args.seed,
                          numpy_optimizer=np_opt, torch_optimizer=t_opt, **options)


def add_record_parser(sub):
    p = sub.add_parser("record", help="run a NumPy model once and store a golden file for 'port'",
                       description="Run a NumPy model once and store what 'compare port' needs "
                                   "(inputs, parameters, layer outputs, gradients, training) in "
                                   "a plain .npz")
    p.add_argument("numpy", metavar="NUMPY", help="path/to/file.py:name or package.module:name")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.npz")
    p.add_argument("--data", default=None, metavar="mnist|random|FILE.npz",
                   help="the batches: MNIST (default), seeded noise, or arrays x and t in a .npz")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 100)")
    p.add_argument("--seed", type=int, default=None, help="seed of the batches (default 0)")
    p.add_argument("--dtype", choices=("float64", "float32"), default=None)
    p.add_argument("--labels", choices=("one-hot", "index"), default=None)
    p.add_argument("--input-shape", default=None, metavar="784 | 1,28,28")
    p.add_argument("--numpy-gradient", choices=("auto", "numerical"), default="auto",
                   help="store backprop (auto, when the model has it) or central differences")
    p.add_argument("--steps", type=int, default=None, help="also record this many training steps")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 0.1)")
    p.add_argument("--numpy-optimizer", default=None, metavar="FILE.py:name")
    p.add_argument("--time-size", type=int, default=None, metavar="T",
                   help="with --data FILE.npz holding a 1-D integer corpus: the steps of each "
                        "window; with --steps K, the K windows, their draws and the state "
                        "carried are recorded")
    p.add_argument("--max-grad-norm", type=float, default=None, metavar="G",
                   help="with a corpus and --steps: the book's clip_grads on the gradients")


def cmd_record(args):
    from ..port.data import first_batch
    from ..port.recording import record, save
    from ..port.reference import NumpySide
    from ..port.targets import PortSetupError, load_attribute, load_target

    if not str(args.out).endswith(".npz"):
        raise PortSetupError(f"--out must name a .npz file, got {args.out}")
    check_outputs(args)
    resolve_options(args)
    args.directions, args.torch_optimizer = 1, None
    check_options(args)
    model = load_target(args.numpy, "numpy side")
    corpus = _corpus(args, None)
    if corpus is not None:
        return _record_corpus(args, model, corpus)
    side = NumpySide(model, args.dtype)
    dtype = side.dtype.name
    x, t = dataset(args, side.params, dtype)
    xb, tb = first_batch(x, t, batch=args.batch, seed=args.seed)
    options = {k: getattr(args, k) for k in RECORDED}
    options["dtype"] = dtype
    options["numpy_optimizer"] = args.numpy_optimizer
    training = None
    if args.steps is not None:
        optimizer = (load_attribute(args.numpy_optimizer, "numpy optimizer", "optimizer")
                     if args.numpy_optimizer else None)
        training = {"x": x, "t": t, "steps": args.steps, "batch_size": args.batch, "lr": args.lr,
                    "seed": args.seed, "optimizer": optimizer}
    arrays = record(model, xb, tb, options=options, training=training,
                    numpy_gradient=args.numpy_gradient)
    path = save(arrays, args.out)
    size = path.stat().st_size
    import json
    meta = json.loads(str(arrays["meta"]))
    print(f"recorded {meta['model']} on {args.data} (batch {args.batch}, seed {args.seed}, {dtype}): "
          f"{len(meta['params'])} parameters, {len(meta['layers'])} layer calls, gradient by "
          f"{meta['gradient']}" + (f", {args.steps} training steps ({meta['training']['storage_text']})"
                                   if training else ""))
    if args.batch_note:
        print(f"note: {args.batch_note}")
    return True, f"DONE: wrote {path} ({size / 2**20:.1f} MiB)"


def _record_corpus(args, model, corpus):
    """``record`` on a corpus: its first window, and with ``--steps`` the training over
    its windows (``recording.record_windows``)."""
    from ..port.corpus import windows
    from ..port.recording import record, record_windows, save
    from ..port.targets import load_attribute
    options = {k: getattr(args, k) for k in RECORDED}
    options.update(numpy_optimizer=args.numpy_optimizer, time_size=args.time_size,
                   max_grad_norm=args.max_grad_norm)
    if args.steps is None:
        arrays = record(model, *windows(corpus, args.batch, args.time_size, 1)[0], options=options)
    else:
        optimizer = (load_attribute(args.numpy_optimizer, "numpy optimizer", "optimizer")
                     if args.numpy_optimizer else None)
        arrays = record_windows(model, corpus, options=options, steps=args.steps,
                                batch_size=args.batch, time_size=args.time_size, lr=args.lr,
                                max_grad_norm=args.max_grad_norm, numpy_optimizer=optimizer,
                                seed=args.seed)
    path = save(arrays, args.out)
    import json
    meta = json.loads(str(arrays["meta"]))
    print(f"recorded {meta['model']} on the corpus of {args.data} (windows of {args.batch} x "
          f"{args.time_size}, {meta['dtype']}): {len(meta['params'])} parameters, "
          f"{len(meta['layers'])} layer calls" + (
              f", {args.steps} windows trained ({meta['training']['storage_text']})"
              if args.steps is not None else ""))
    return True, f"DONE: wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)"


def _refusing(command):
    """A check refuses as it goes what it cannot check (a target that does not load, a
    model without params, a batch it cannot take, NaN in an output): exit status 2."""
    def run(args):
        try:
            return command(args)
        except PortSetupError as exc:
            raise CannotRun(str(exc)) from exc
    return run


def _prepare(args):
    """The device before anything loads (a CUDA this machine lacks is a request it cannot
    serve, not a failing port); the other options are checked as the targets load,
    inside the command (see ``_refusing``)."""
    device = getattr(args, "device", None)
    if device is not None:
        from torch_impl.validation import check_device
        try:
            check_device(device, "--device")
        except (ValueError, TypeError) as exc:
            raise CannotRun(exc) from exc


COMMANDS = {"port": _refusing(cmd_port), "record": _refusing(cmd_record)}
PREPARE = {"port": _prepare, "record": _prepare}
