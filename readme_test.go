package paygate_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/numedapp/paygate"
	"github.com/numedapp/paygate/paygatetest"
)

// The README, tried as a new user would. Its code blocks are checked here:
//
//   - every ```go block compiles (go vet, so a _test package's tests
//     compile too), each as a package of its own in a throwaway module that
//     replaces paygate with this checkout; a block that is not a whole file
//     is skipped only when the line before it is <!-- fragment -->, and
//     the fragments are counted;
//   - every ```sh block says, in the line before it, who runs it:
//     <!-- run: TestName, .ci/run --> (each test must exist; this file runs
//     the quick start) or <!-- not run: why -->;
//   - every relative link points at a file or directory of the repository.

// readmeBlock is one fenced code block of README.md.
type readmeBlock struct {
	Lang   string
	Line   int    // of the opening fence, 1-based
	Marker string // the HTML comment on the line before the fence, if any
	Text   string
}

func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []readmeBlock
		cur    *readmeBlock
		prev   string
		n      int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &readmeBlock{Lang: strings.TrimSpace(strings.TrimPrefix(line, "```")), Line: n}
			if p := strings.TrimSpace(prev); strings.HasPrefix(p, "<!--") && strings.HasSuffix(p, "-->") {
				cur.Marker = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(p, "<!--"), "-->"))
			}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.Text += line + "\n"
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("README.md:%d: a code block is never closed", cur.Line)
	}
	return blocks
}

var packageClause = regexp.MustCompile(`(?m)^package (\w+)`)

// Every Go block of the README compiles against this checkout.
func TestReadmeGoBlocksCompile(t *testing.T) {
	t.Parallel()
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gosum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The module requires what paygate requires (so go.sum covers it and no
	// network is needed), and paygate itself from this checkout.
	mod := "module example.com/readme\n\n" + string(regexp.MustCompile(`(?s)^module [^\n]*\n`).ReplaceAll(gomod, nil)) +
		"\nrequire github.com/numedapp/paygate v0.0.0\n\nreplace github.com/numedapp/paygate => " + root + "\n"
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", mod)
	write("go.sum", string(gosum))

	compiled, fragments := 0, 0
	for _, b := range readmeBlocks(t) {
		if b.Lang != "go" {
			continue
		}
		if b.Marker == "fragment" {
			fragments++
			t.Logf("README.md:%d: a fragment, not compiled", b.Line)
			continue
		}
		m := packageClause.FindStringSubmatch(b.Text)
		if m == nil {
			t.Errorf("README.md:%d: a Go block that is not a whole file (no package clause); make it one, or put <!-- fragment --> on the line before it", b.Line)
			continue
		}
		sub := fmt.Sprintf("line%04d", b.Line)
		if pkg, ok := strings.CutSuffix(m[1], "_test"); ok {
			write(sub+"/doc.go", "package "+pkg+"\n")
			write(sub+"/readme_test.go", b.Text)
		} else {
			write(sub+"/main.go", b.Text)
		}
		compiled++
	}
	t.Logf("README.md: %d Go blocks compiled, %d fragments skipped", compiled, fragments)
	if compiled == 0 {
		t.Fatal("no Go block compiled")
	}
	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's Go blocks do not compile (directories are named by the block's line in README.md):\n%s", out)
	}
}

var (
	runMarker     = regexp.MustCompile(`^run: (.+)$`)
	parenthetical = regexp.MustCompile(`\([^)]*\)`)
	testFuncDef   = regexp.MustCompile(`(?m)^func (Test\w+)\(`)
)

// Every shell block of the README is run by a named test or by .ci/run,
// or says why it is not run.
func TestReadmeShellBlocksAreRun(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range testFuncDef.FindAllStringSubmatch(string(b), -1) {
				tests[m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	run, notRun := 0, 0
	for _, b := range readmeBlocks(t) {
		if b.Lang != "sh" {
			continue
		}
		if strings.HasPrefix(b.Marker, "not run: ") {
			notRun++
			t.Logf("README.md:%d: not run (%s)", b.Line, strings.TrimPrefix(b.Marker, "not run: "))
			continue
		}
		m := runMarker.FindStringSubmatch(b.Marker)
		if m == nil {
			t.Errorf("README.md:%d: a shell block without <!-- run: TestName --> or <!-- not run: why --> on the line before it", b.Line)
			continue
		}
		// Names, each perhaps followed by what it runs in parentheses.
		for _, who := range strings.Split(parenthetical.ReplaceAllString(m[1], ""), ",") {
			who = strings.TrimSpace(who)
			switch {
			case who == ".ci/run":
				if _, err := os.Stat(".ci/run"); err != nil {
					t.Errorf("README.md:%d: %v", b.Line, err)
				}
			case !tests[who]:
				t.Errorf("README.md:%d: run by %q, and no test of that name exists", b.Line, who)
			}
		}
		run++
	}
	t.Logf("README.md: %d shell blocks run by tests or .ci/run, %d not run", run, notRun)
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// The README's relative links point inside the repository, and it links
// what a new user needs.
func TestReadmeLinks(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, m := range mdLink.FindAllStringSubmatch(readme, -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		path, _, _ := strings.Cut(target, "#")
		if strings.HasPrefix(filepath.Clean(path), "..") {
			t.Errorf("README links %s, outside the repository", target)
			continue
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("README links %s: %v", target, err)
		}
	}
	for _, want := range []string{"(docs/openapi.json)", "`GET /docs`", "(paygatetest)", "(callback/verify)", "(sandbox)", "(examples/chi)"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README does not link %s", want)
		}
	}
}

// The README's quick start, run as written: its shell block talks to the
// same wiring `paymentd dev` makes (a Gateway without auth, Stripe played
// by the sandbox delivering its webhooks), started here in-process; only
// the two addresses are this test's.
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the quick start needs %s (apt-get install %s): %v", tool, tool, err)
		}
	}
	var block *readmeBlock
	for _, b := range readmeBlocks(t) {
		if b.Lang == "sh" && strings.Contains(b.Marker, "TestReadmeQuickStart") && strings.Contains(b.Text, "\nSANDBOX=") {
			block = &b
			break
		}
	}
	if block == nil {
		t.Fatal("README.md has no shell block marked <!-- run: TestReadmeQuickStart --> that sets SANDBOX=")
	}
	env := paygatetest.New(t, paygatetest.WithAutoDeliver(), paygatetest.WithoutRun(),
		paygatetest.WithConfig(func(c *paygate.Config) { c.Auth, c.InsecureNoAuth = nil, true }))

	script := block.Text
	for _, v := range []struct{ name, value string }{{"API", env.Server.URL}, {"SANDBOX", env.Sandbox.URL()}} {
		re := regexp.MustCompile(`(?m)^` + v.name + `=\S*`)
		if !re.MatchString(script) {
			t.Fatalf("README.md:%d: the quick start sets no %s=", block.Line, v.name)
		}
		script = re.ReplaceAllString(script, v.name+"="+v.value)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	out, err := cmd.CombinedOutput()
	t.Logf("the quick start's output:\n%s", out)
	if err != nil {
		t.Fatalf("README.md:%d: the quick start failed: %v", block.Line, err)
	}
	// What the README promises the reader sees, in order.
	text := string(out)
	for _, want := range []string{"succeeded", "partially_refunded"} {
		i := strings.Index(text, want)
		if i < 0 {
			t.Fatalf("the quick start never printed %q", want)
		}
		text = text[i+len(want):]
	}
}

// The README's request bodies are accepted as written: each curl of the
// block runs against a Gateway (with API keys) on the sandbox; pay_… is a
// succeeded payment of this test's.
func TestReadmeRequestBodies(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's requests need %s (apt-get install %s): %v", tool, tool, err)
		}
	}
	var block *readmeBlock
	for _, b := range readmeBlocks(t) {
		if b.Lang == "sh" && strings.Contains(b.Marker, "TestReadmeRequestBodies") {
			block = &b
			break
		}
	}
	if block == nil {
		t.Fatal("README.md has no shell block marked <!-- run: TestReadmeRequestBodies -->")
	}
	env := paygatetest.New(t, paygatetest.WithoutRun())
	p, err := env.Gateway.CreatePaymentLink(context.Background(), paygate.PaymentLinkParams{Amount: "20.00"})
	if err != nil {
		t.Fatal(err)
	}
	env.Succeed(p.ID)
	script := strings.ReplaceAll(block.Text, "pay_…", p.ID)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "API="+env.Server.URL, "API_KEY="+paygatetest.APIKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README.md:%d: a request failed: %v\n%s", block.Line, err, out)
	}
	if got := strings.Count(string(out), `"status":true`); got != 6 {
		t.Fatalf("%d of 6 requests succeeded:\n%s", got, out)
	}
	if got := env.Payment(p.ID); got.Status != paygate.StatusPartiallyRefunded || got.AmountRefunded != 500 {
		t.Fatalf("after the README's refund: %s %d", got.Status, got.AmountRefunded)
	}
}
