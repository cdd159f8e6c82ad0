# %% [markdown]
# # Feldman–Cousins limits on a local Dask cluster
#
# Wilks' theorem (Δχ² = 4 at 2σ for one parameter) fails where the coupling meets its boundary g ≥ 0 and where
# interference makes Δχ²(g) non-monotonic. `cevnsfit fc` builds the Neyman belt with Feldman–Cousins ordering
# from toy experiments instead (`docs/validation/fc.md` for its checks). The toys are split into tasks that any
# Dask cluster can run; every task draws from its own seed, so the numbers do not depend on the cluster.
#
# **Shortened for the site:** 200 toys per tested coupling (1000 is the command's default), 10 tested couplings per
# decade (20), B−L on CsI only, the M → 0 line only, two local workers. The toy error printed beside the FC limit
# says what so few toys cost. Runs in about 20 s.

# %%
import tempfile
from pathlib import Path

from dask.distributed import LocalCluster

from cevnsfit.fc import run_fc_to_folder

out = Path(tempfile.mkdtemp(prefix="cevnsfit-tutorial-"))

# %% [markdown]
# ## A local cluster
#
# One single-threaded worker process per core (the profiles are compiled and single-threaded). `cevnsfit fc`
# starts such a cluster itself when it is given no `--scheduler`; here we start it ourselves, to show what a
# scheduler address is.

# %%
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
print(cluster.scheduler_address)

# %%
doc = run_fc_to_folder("B-L", out, dataset="csi", regime="low", n_toys=200, block=100, per_decade=10,
                       scheduler=cluster.scheduler_address, with_table=False)
row = doc["limits"][0]
print(f"FC:    g < {row['g_low_mass']:.3g} +- {row['toy_error']['g_low_mass']:.2g} (toy error)")
print(f"Wilks: g < {row['wilks']['g_low_mass']:.3g} (one parameter, Delta chi^2 = 4)")
cluster.close()

# %% [markdown]
# The folder holds `fc.json`, `fc.md`, `fc.csv` and the resumable store: rerunning the same call computes nothing,
# and more toys add blocks to it.

# %%
print(sorted(p.name for p in out.iterdir()))
print((out / "fc.md").read_text())

# %% [markdown]
# Each tested coupling has its observed statistic t_obs, the critical value t_c from the toys (with its binomial
# error band) and its p-value; the limit is where t_obs crosses t_c. With Wilks, t_c would be 4 everywhere.

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, display

line = row["lines"]["low_mass"]
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(line["coupling"], line["t_obs"], "k-", label="observed $t(g)$")
ax.plot(line["coupling"], line["t_c"], "C0o-", ms=3, label="$t_c(g)$, 95.45 % of the toys")
lo, hi = zip(*line["t_c_band"])
ax.fill_between(line["coupling"], lo, hi, color="C0", alpha=0.25, lw=0, label="$t_c$ toy error")
ax.axhline(4, color="C3", ls="--", label="Wilks: 4")
ax.axvline(row["g_low_mass"], color="k", ls=":", label=f"FC limit {row['g_low_mass']:.3g}")
ax.set(xscale="log", xlim=(1e-5, 2e-4), ylim=(0, 12), xlabel="$g$ (B$-$L, $M \\to 0$)", ylabel="$t$")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(out / "fc_line.png", dpi=110)
plt.close(fig)
display(Image(filename=str(out / "fc_line.png"), width=520))

# %% [markdown]
# ## On a real cluster (not run here)
#
# The workers need cevnsfit installed and the data at the same path (or `CEVNSFIT_DATA` set). With a Dask
# scheduler running somewhere:
#
# ```bash
# dask scheduler --host 0.0.0.0 --port 8786 &                     # on one machine
# dask worker tcp://SCHEDULER_HOST:8786 --nthreads 1 --nworkers 4  # on every worker machine
# cevnsfit fc --model L_mu-L_tau --dataset all --toys 10000 --scheduler tcp://SCHEDULER_HOST:8786 --out fc-lmu
# ```
#
# On SLURM, [dask-jobqueue](https://jobqueue.dask.org) (`pip install dask-jobqueue`) submits the workers as batch
# jobs; the address it prints goes to `--scheduler`, or to `scheduler=` in Python as above:
#
# ```python
# from dask_jobqueue import SLURMCluster
#
# cluster = SLURMCluster(cores=16, processes=16, memory="32GB", walltime="02:00:00", queue="normal")
# cluster.scale(jobs=8)                  # 8 nodes x 16 single-threaded workers
# doc = run_fc_to_folder("L_mu-L_tau", "fc-lmu", dataset="all", n_toys=10_000,
#                        scheduler=cluster.scheduler_address)
# ```
#
# A job that is killed is resumed by the same call: only the missing tasks run.

# %%
import shutil

shutil.rmtree(out)
