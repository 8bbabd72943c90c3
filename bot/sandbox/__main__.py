"""`python -m bot.sandbox`: the same as `warroom sandbox`."""

from bot.sandbox import main

if __name__ == "__main__":
    raise SystemExit(main())
