package paygate_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Every example has a README; the examples with a module of their own
// (their go.mod replaces paygate with this checkout, so the library gains
// none of their dependencies) are vetted and tested here, since `go test
// ./...` of the root module does not reach them. The others are packages of
// the root module, built by `go vet ./...` and `go test ./...`.
func TestExampleModules(t *testing.T) {
	dirs, err := filepath.Glob("examples/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no examples")
	}
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
			t.Errorf("%s has no README.md", dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			for _, args := range [][]string{{"vet", "./..."}, {"test", "-count=1", "./..."}} {
				cmd := exec.Command("go", args...)
				cmd.Dir = dir
				// The example's go.mod and go.sum must be complete: go never edits them here.
				cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("go %v in %s: %v\n%s", args, dir, err, out)
				}
			}
		})
	}
}
