# The browser test (tests/integration/test_browser.py): Debian's chromium, driven by the
# playwright Python package from the dev extra. Never `playwright install`: it downloads
# browsers from outside the package registries.
CHROMIUM ?= /usr/bin/chromium

.PHONY: browser
browser: $(CHROMIUM)

$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

TEST_DEPS += browser
