"""The engine's contracts seen from the command line: options a model does
not use are refused, not ignored."""

from harness import Server, run_client


def test_workers_refused_by_models_without_workers():
    for model in ("iterative", "fork", "thread"):
        r = run_client(["serve", "--model", model, "--workers", "2", "echo",
                        "tcp://127.0.0.1:0"], timeout=10)
        assert r.returncode == 2, (model, r)
        assert r.err == "sockit: --workers is not used by the %s model\n" % (
            model), r.err


def test_workers_accepted_by_models_with_workers():
    for model in ("prefork", "select", "poll", "epoll"):
        with Server(["echo", "--model", model, "--workers", "2",
                     "tcp://127.0.0.1:0"]) as srv:
            assert srv.alive(), model
