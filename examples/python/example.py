#!/usr/bin/env python3
"""vramfit from Python: plan a split, complete a prompt (streamed), chat, and see where the bytes went.

    python3 examples/python/example.py MODEL.gguf [--vram-budget 11.5GiB] [--device auto|cpu|cuda]

Needs the vramfit package (pip install ./python, see the README) and libvramfit.so (set
VRAMFIT_LIBRARY=build/lib/libvramfit.so, or install the library). Copy it and change what you need.
"""
import argparse
import logging

import vramfit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--vram-budget", default=None, help="e.g. 11.5GiB (default: free VRAM minus 512 MiB)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--verbose", action="store_true", help="show the library's log messages")
    args = parser.parse_args()
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    # 1. The plan: which tensors go to the GPU under the budget, from the file's header alone.
    plan = vramfit.plan(args.model, vram_budget=args.vram_budget, n_ctx=args.n_ctx)
    print(f"plan: {plan['device_total_bytes'] / 2**30:.2f} GiB of a {plan['budget_bytes'] / 2**30:.2f} GiB budget "
          f"on the GPU, {plan['n_device_layers']} of {plan['n_layer']} layers; "
          f"predicted {plan['predicted_tg_tok_s']:.1f} tokens/s")

    def progress(fraction: float) -> bool:
        print(f"\rloading {fraction:4.0%}", end="", flush=True)
        return True  # False cancels the load (vramfit.CancelledError)

    try:
        llm = vramfit.Llama(args.model, n_ctx=args.n_ctx, vram_budget=args.vram_budget, device=args.device,
                            seed=42, progress_callback=progress)
    except vramfit.BudgetExceededError as e:  # the message names the smallest budget that works
        raise SystemExit(f"\n{e}")
    print()
    with llm:
        # 2. A completion, streamed piece by piece (OpenAI-shaped chunks, as llama-cpp-python's).
        print("completion:", end="")
        for chunk in llm("Once upon a time, there was a little", max_tokens=48, temperature=0.7, stream=True,
                         stop=["\n\n"]):
            print(chunk["choices"][0]["text"], end="", flush=True)
        print()

        # 3. A chat turn, formatted by the model's own chat template (ChatML when it has none).
        answer = llm.create_chat_completion(
            [{"role": "system", "content": "You are a helpful assistant."},
             {"role": "user", "content": "Write one sentence about the sea."}], max_tokens=64)
        print("chat:", answer["choices"][0]["message"]["content"].strip())
        print("usage:", answer["usage"])

        # 4. Where the bytes are: per device (the host first), weights / KV cache / scratch.
        for device in llm.memory()["devices"]:
            print(f"memory on {device['device']}: weights {device['weights'] / 2**20:.1f} MiB, "
                  f"KV {device['kv'] / 2**20:.1f} MiB, scratch {device['scratch'] / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
