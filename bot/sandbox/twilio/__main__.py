"""``python -m bot.sandbox.twilio``: run the simulator alone, printing its URL as the first line of stdout."""

import sys

from bot.sandbox.twilio.standalone import main

sys.exit(main())
