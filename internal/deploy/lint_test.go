package deploy

import (
	"archive/zip"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests in this file ask the real tools, not this package's reading of
// the templates: cfn-lint (which runs the SAM transform through
// aws-sam-translator) on template.yaml, and cfn-lint on the CloudFormation
// that the Serverless Framework's `serverless package` writes from
// serverless.yml. Both tools are what a user deploys with, so a template
// that they reject fails here even when the tests above agree with it.

// cfnLintInstall is how to get the linter: the machine image ships these
// versions (the pip registry is not reachable from it).
const cfnLintInstall = "pip install cfn-lint==1.51.0 aws-sam-translator==1.110.0"

// cfnLint returns the cfn-lint executable. Without one the test is skipped
// on a developer's machine and fails in CI (CI is set), never passes.
func cfnLint(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("cfn-lint")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cfn-lint is not installed (%v): CI must lint the templates; install it with: %s", err, cfnLintInstall)
		}
		t.Skipf("cfn-lint is not installed (%v); install it with: %s", err, cfnLintInstall)
	}
	return path
}

// serverlessBin is the Serverless Framework that `make test-deps` installs
// (pinned in tools/node/package.json).
func serverlessBin(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join(root, "tools", "node", "node_modules", ".bin", "serverless"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the Serverless Framework is not installed at %s: run `make test-deps` (npm ci --prefix tools/node) first", bin)
	}
	return bin
}

// run runs a command with a deadline and returns its combined output.
func run(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCfnLint(t *testing.T) {
	lint := cfnLint(t)
	if v, err := run(t, "", os.Environ(), lint, "--version"); err == nil {
		t.Logf("%s", strings.TrimSpace(v))
	}
	tests := []struct {
		name string
		// templates writes the CloudFormation to lint and returns the files.
		templates func(t *testing.T) []string
	}{
		{"template.yaml, SAM transform", func(t *testing.T) []string {
			return []string{filepath.Join(root, "template.yaml")}
		}},
		{"serverless package, default params", func(t *testing.T) []string {
			return serverlessPackage(t)
		}},
		{"serverless package, every option on", func(t *testing.T) []string {
			return serverlessPackage(t, "enableEcrEvents=true", "alarmEmail=ops@example.com", "receiverReservedConcurrency=5", "allowPrivateCidrs=10.0.0.0/8")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := tt.templates(t)
			// Any finding, error, warning or informational, is a non-zero exit.
			out, err := run(t, "", os.Environ(), lint, append([]string{"--format", "parseable", "--"}, files...)...)
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

// serverlessPackage runs `serverless package` on a copy of serverless.yml,
// with placeholder artifacts (the stack does not depend on their contents),
// dummy AWS credentials, no shared AWS configuration and a HOME of its own,
// and returns the CloudFormation templates it wrote. It needs no network:
// packaging reads no AWS API and, with telemetry and notifications off,
// contacts nothing else.
func serverlessPackage(t *testing.T, params ...string) []string {
	t.Helper()
	sls := serverlessBin(t)
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(root, "serverless.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "serverless.yml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, fn := range Functions {
		writeArtifact(t, filepath.Join(dir, fn.Artifact))
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"SLS_TELEMETRY_DISABLED=1",
		"SLS_NOTIFICATIONS_MODE=off",
	}
	// registries has no default: it holds the registries' secrets.
	args := []string{"package", "--stage", "test", "--region", "us-east-1", "--param=registries=tcr=example-token-0123456789"}
	for _, p := range params {
		args = append(args, "--param="+p)
	}
	if out, err := run(t, dir, env, sls, args...); err != nil {
		t.Fatalf("serverless %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var files []string
	for _, name := range []string{"cloudformation-template-create-stack.json", "cloudformation-template-update-stack.json"} {
		f := filepath.Join(dir, ".serverless", name)
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("serverless package wrote no %s: %v", name, err)
		}
		files = append(files, f)
	}
	return files
}

// writeArtifact writes a zip holding an executable bootstrap, the shape
// `make package` builds.
func writeArtifact(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err == nil {
		_, err = w.Write([]byte("#!/bin/sh\n"))
	}
	if err == nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}
