import sys

from bnn_hw.cli import main

sys.exit(main())
