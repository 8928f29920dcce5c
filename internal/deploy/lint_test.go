package deploy

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCfnLint asks cfn-lint, not this package's tests, about the templates:
// template.yaml (cfn-lint runs the SAM transform itself) and the
// CloudFormation that `serverless package` writes from serverless.yml, for
// each parameter set. A template it finds anything in fails here even when
// the tests in template_test.go agree with it.
func TestCfnLint(t *testing.T) {
	lint := cfnLint(t)
	if v, err := run(context.Background(), "", os.Environ(), lint, "--version"); err == nil {
		t.Logf("%s", strings.TrimSpace(v))
	}
	tests := []struct {
		name string
		// templates writes the CloudFormation to lint and returns the files.
		templates func(t *testing.T) []string
	}{
		{"template.yaml, SAM transform", func(t *testing.T) []string {
			return []string{root + "/template.yaml"}
		}},
	}
	for _, set := range paramSets {
		tests = append(tests, struct {
			name      string
			templates func(t *testing.T) []string
		}{"serverless package, " + set.name, func(t *testing.T) []string { return serverlessPackage(t, set) }})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := tt.templates(t)
			// Any finding, error, warning or informational, is a non-zero exit.
			out, err := run(context.Background(), "", os.Environ(), lint, append([]string{"--format", "parseable", "--"}, files...)...)
			var exit *exec.ExitError
			switch {
			case errors.As(err, &exit):
				t.Errorf("cfn-lint %s: exit %d:\n%s", strings.Join(files, " "), exit.ExitCode(), out)
			case err != nil:
				t.Fatalf("cfn-lint: %v\n%s", err, out)
			}
		})
	}
}

// cfnLint returns the cfn-lint executable. Without one the test is skipped
// on a developer's machine and fails in CI (CI is set), never passes.
func cfnLint(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("cfn-lint")
	if err != nil {
		missingTool(t, "cfn-lint", err, toolsInstall)
	}
	return path
}
