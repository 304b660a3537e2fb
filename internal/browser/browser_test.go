package browser

import (
	"strings"
	"testing"
)

func TestPathHonoursChromiumBin(t *testing.T) {
	t.Setenv("CHROMIUM_BIN", "/nonexistent/chromium")
	if _, err := Path(); err == nil || !strings.Contains(err.Error(), "CHROMIUM_BIN") {
		t.Fatalf("Path with a missing $CHROMIUM_BIN: %v", err)
	}
}

func TestNotInstalledSaysHowToInstall(t *testing.T) {
	if !strings.Contains(ErrNotInstalled.Error(), "apt-get install -y chromium") {
		t.Fatal(ErrNotInstalled)
	}
}
