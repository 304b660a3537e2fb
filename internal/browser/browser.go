// Package browser finds and starts headless Chromium for page tests, driven
// from Go with chromedp. Debian's chromium package provides it:
//
//	apt-get update && apt-get install -y chromium
//
// Tests that need a browser FAIL (never skip) when it is missing, with a
// message saying how to install it.
package browser

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultPath is where Debian's chromium package installs the browser.
const DefaultPath = "/usr/bin/chromium"

// ErrNotInstalled says Chromium was not found, and how to install it.
var ErrNotInstalled = errors.New("browser: Chromium not found at " + DefaultPath +
	" (nor $CHROMIUM_BIN, chromium or chromium-browser on PATH); install it: apt-get update && apt-get install -y chromium")

// Path returns the Chromium to run: $CHROMIUM_BIN when set, else
// DefaultPath, else chromium or chromium-browser on PATH. It returns
// ErrNotInstalled when there is none.
func Path() (string, error) {
	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", errors.New("browser: $CHROMIUM_BIN=" + p + " does not exist")
		}
		return p, nil
	}
	if _, err := os.Stat(DefaultPath); err == nil {
		return DefaultPath, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

// Flags are the command-line flags Chromium runs with: headless, no
// sandbox (tests run as root), no GPU, and nothing that talks to the
// network by itself.
var Flags = []string{
	"headless", "no-sandbox", "disable-gpu", "disable-quic", "no-first-run",
	"disable-background-networking", "disable-component-update", "disable-sync",
	"no-default-browser-check", "disable-extensions", "disable-dev-shm-usage",
}

// Options are the chromedp allocator options for Chromium at path with a
// fresh profile in userDataDir.
func Options(path, userDataDir string) []chromedp.ExecAllocatorOption {
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(userDataDir),
		chromedp.WindowSize(1024, 900)}
	for _, f := range Flags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	return opts
}

// New starts headless Chromium for a test with a fresh profile and returns
// a chromedp context bound to a tab, with timeout for the whole test. The
// browser stops when the test ends. A missing Chromium fails the test.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	path, err := Path()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, Options(path, t.TempDir())...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("browser: start %s: %v", path, err)
	}
	return bctx
}
