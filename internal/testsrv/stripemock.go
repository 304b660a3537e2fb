package testsrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// StripeMockVersion is the pinned version of Stripe's stripe-mock.
const StripeMockVersion = "v0.203.0"

// StripeMockKey is a secret key stripe-mock accepts (it refuses keys with
// extra underscores).
const StripeMockKey = "sk_test_123abc"

// StripeMock is a running stripe-mock.
type StripeMock struct {
	// URL is the HTTP base URL ("http://127.0.0.1:PORT").
	URL  string
	cmd  *exec.Cmd
	done chan error
}

// stripeMockBinary returns $STRIPE_MOCK_BIN, or the pinned stripe-mock
// built into the user cache directory, building it with `go install` (from
// the Go module proxy) the first time. A file lock keeps concurrent test
// processes from building it twice.
func stripeMockBinary(ctx context.Context) (string, error) {
	if b := os.Getenv("STRIPE_MOCK_BIN"); b != "" {
		return b, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "paygate", "stripe-mock-"+StripeMockVersion)
	bin := filepath.Join(dir, "stripe-mock")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("testsrv: stripe-mock is not built and no go command is on PATH to build it; set STRIPE_MOCK_BIN")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", "github.com/stripe/stripe-mock@"+StripeMockVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testsrv: go install stripe-mock@%s: %w\n%s", StripeMockVersion, err, out)
	}
	return bin, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartStripeMock starts stripe-mock on loopback ports and waits until it answers.
func StartStripeMock(ctx context.Context) (*StripeMock, error) {
	bin, err := stripeMockBinary(ctx)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		m, err := startStripeMock(ctx, bin)
		if err == nil {
			return m, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startStripeMock(ctx context.Context, bin string) (*StripeMock, error) {
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	httpsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &StripeMock{URL: "http://127.0.0.1:" + strconv.Itoa(httpPort)}
	m.cmd = exec.Command(bin, "-http-addr", "127.0.0.1:"+strconv.Itoa(httpPort), "-https-addr", "127.0.0.1:"+strconv.Itoa(httpsPort))
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("testsrv: start stripe-mock: %w", err)
	}
	m.done = make(chan error, 1)
	go func() { m.done <- m.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/v1/balance", nil)
		req.Header.Set("Authorization", "Bearer "+StripeMockKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m, nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		select {
		case werr := <-m.done:
			return nil, fmt.Errorf("testsrv: stripe-mock exited: %v", werr)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			m.Stop()
			return nil, fmt.Errorf("testsrv: stripe-mock did not answer: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends stripe-mock.
func (m *StripeMock) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}
