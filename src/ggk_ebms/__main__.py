"""``python -m ggk_ebms`` runs the ``ggk-ebms`` command."""

from ggk_ebms.cli.main import main

if __name__ == "__main__":
    main()
