"""``python -m bmssim``: start the simulated bench."""


def main() -> None:
    raise SystemExit("bmssim: not built yet")


if __name__ == "__main__":
    main()
