package deploy

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file runs the real tools, each once per parameter set per test
// binary: the SAM transform (tools/samtranslate/translate.py, on
// aws-sam-translator) on template.yaml and `serverless package` on
// serverless.yml. Both need no network and no AWS credentials. Without a
// tool the tests that need it are skipped on a developer's machine, with
// the command that installs it, and fail in CI (CI is set).

// root is the repository root, seen from this package's directory.
const root = "../.."

// toolsInstall is how to get cfn-lint and the SAM translator: the machine
// image ships these versions (the pip registry is not reachable from it).
const toolsInstall = "pip install cfn-lint==1.51.0 aws-sam-translator==1.110.0"

// testTokens is the RegistryTokens value of every parameter set: the
// parameter has no default (it holds the registries' secrets).
const testTokens = "tcr=example-token-0123456789"

// paramSet is one deploy's parameter values, by SAM name; the others take
// their defaults. Each tool runs once per set, with the same values.
type paramSet struct {
	name   string
	values map[string]string
}

var (
	defaultParams = paramSet{"default params", map[string]string{"RegistryTokens": testTokens}}
	// changedParams gives every parameter a value other than its default,
	// switching every option on, so a parameter that one file ignores, or
	// wires to the wrong setting, shows (TestChangedParamsCoverEveryParameter).
	changedParams = paramSet{"every parameter changed", map[string]string{
		"RegistryTokens":                 testTokens,
		"RetentionDays":                  "7",
		"AllowPrivateCidrs":              "10.0.0.0/8",
		"LogLevel":                       "DEBUG",
		"TriggerCacheTTL":                "30s",
		"DedupeWindow":                   "1h",
		"MaxAttempts":                    "3",
		"BatchSize":                      "5",
		"MaximumBatchingWindowInSeconds": "2",
		"DispatcherMaxConcurrency":       "20",
		"ReceiverReservedConcurrency":    "5",
		"LogRetentionInDays":             "14",
		"AlarmEmail":                     "ops@example.com",
		"EnableEcrEvents":                "true",
	}}
	paramSets = []paramSet{defaultParams, changedParams}
)

// toolDir holds what the tools write; TestMain removes it.
var toolDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "regtrigger-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	toolDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// missingTool skips the test, or fails it in CI, for a tool that is not
// installed.
func missingTool(t *testing.T, what string, err error, install string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (%v): CI must check the templates with it; install it with: %s", what, err, install)
	}
	t.Skipf("%s is not installed (%v); install it with: %s", what, err, install)
}

// The tools, looked up once per test binary.
var (
	samPython = sync.OnceValues(func() (string, error) {
		py, err := exec.LookPath("python3")
		if err != nil {
			return "", err
		}
		if out, err := run(context.Background(), "", os.Environ(), py, "-c", "import samtranslator"); err != nil {
			return "", fmt.Errorf("python3 -c 'import samtranslator': %v: %s", err, strings.TrimSpace(out))
		}
		return py, nil
	})
	serverlessPath = sync.OnceValues(func() (string, error) {
		bin, err := filepath.Abs(filepath.Join(root, "tools", "node", "node_modules", ".bin", "serverless"))
		if err == nil {
			_, err = os.Stat(bin)
		}
		return bin, err
	})
)

// samTranslator returns the Python that has aws-sam-translator.
func samTranslator(t *testing.T) string {
	t.Helper()
	py, err := samPython()
	if err != nil {
		missingTool(t, "aws-sam-translator", err, toolsInstall)
	}
	return py
}

// serverlessBin is the Serverless Framework that `make test-deps` installs
// (pinned in tools/node/package.json).
func serverlessBin(t *testing.T) string {
	t.Helper()
	bin, err := serverlessPath()
	if err != nil {
		missingTool(t, "the Serverless Framework", err, "make test-deps (npm ci --prefix tools/node)")
	}
	return bin
}

// startRuns starts every tool run of every parameter set at once, the
// first time a test needs one, so the slow runs overlap.
var startRuns = sync.OnceFunc(func() {
	for _, set := range paramSets {
		if py, err := samPython(); err == nil {
			go samRun(py, set)
		}
		if sls, err := serverlessPath(); err == nil {
			go serverlessRun(sls, set)
		}
	}
})

// run runs a command with a deadline and returns its combined output.
func run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// offlineEnv is the environment of both tools: dummy AWS credentials, no
// shared AWS configuration, no instance metadata, a HOME of its own,
// telemetry and notifications off.
func offlineEnv(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"SLS_TELEMETRY_DISABLED=1",
		"SLS_NOTIFICATIONS_MODE=off",
	}
}

// toolRun is one tool's run on one parameter set, done once per test binary.
type toolRun struct {
	once sync.Once
	// files are the CloudFormation templates the tool wrote.
	files []string
	err   error
}

var (
	runsMu sync.Mutex
	runs   = map[string]*toolRun{}
)

// cached runs do once for key, and returns its result to every caller.
func cached(key string, do func(dir string) ([]string, error)) ([]string, error) {
	runsMu.Lock()
	r := runs[key]
	if r == nil {
		r = &toolRun{}
		runs[key] = r
	}
	runsMu.Unlock()
	r.once.Do(func() {
		dir := filepath.Join(toolDir, strings.NewReplacer(" ", "-", "/", "-").Replace(key))
		if r.err = os.MkdirAll(filepath.Join(dir, "home"), 0o755); r.err == nil {
			r.files, r.err = do(dir)
		}
	})
	return r.files, r.err
}

// samTranslate returns the CloudFormation the SAM transform makes of
// template.yaml with the set's parameter values.
func samTranslate(t *testing.T, set paramSet) string {
	t.Helper()
	py := samTranslator(t)
	startRuns()
	files, err := samRun(py, set)
	if err != nil {
		t.Fatal(err)
	}
	return files[0]
}

func samRun(py string, set paramSet) ([]string, error) {
	return cached("sam "+set.name, func(dir string) ([]string, error) {
		script, err := filepath.Abs(filepath.Join(root, "tools", "samtranslate", "translate.py"))
		if err != nil {
			return nil, err
		}
		tpl, err := filepath.Abs(filepath.Join(root, "template.yaml"))
		if err != nil {
			return nil, err
		}
		args := []string{script, "--region", "us-east-1"}
		for _, name := range sortedKeys(set.values) {
			args = append(args, "--param", name+"="+set.values[name])
		}
		args = append(args, tpl)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, py, args...)
		cmd.Dir, cmd.Env = dir, offlineEnv(filepath.Join(dir, "home"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("the SAM transform of template.yaml (%s): %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		file := filepath.Join(dir, "template.json")
		return []string{file}, os.WriteFile(file, out, 0o644)
	})
}

// serverlessPackage runs `serverless package` on a copy of serverless.yml
// with the set's parameter values and placeholder artifacts (the stack does
// not depend on their contents), and returns the CloudFormation templates it
// wrote: the create-stack and the update-stack one.
func serverlessPackage(t *testing.T, set paramSet) []string {
	t.Helper()
	sls := serverlessBin(t)
	startRuns()
	files, err := serverlessRun(sls, set)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func serverlessRun(sls string, set paramSet) ([]string, error) {
	return cached("serverless "+set.name, func(dir string) ([]string, error) {
		out, err := packageServerless(sls, dir, set.values)
		if err != nil {
			return nil, fmt.Errorf("%v\n%s", err, out)
		}
		var files []string
		for _, name := range []string{"cloudformation-template-create-stack.json", "cloudformation-template-update-stack.json"} {
			f := filepath.Join(dir, ".serverless", name)
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("serverless package wrote no %s: %v", name, err)
			}
			files = append(files, f)
		}
		return files, nil
	})
}

// packageServerless runs `serverless package` in dir with the given
// parameters (SAM names) and returns its output.
func packageServerless(sls, dir string, values map[string]string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "serverless.yml"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "serverless.yml"), b, 0o644); err != nil {
		return "", err
	}
	for _, fn := range Functions {
		if err := writeArtifact(filepath.Join(dir, fn.Artifact)); err != nil {
			return "", err
		}
	}
	bySAM := map[string]string{}
	for _, p := range Parameters {
		bySAM[p.SAM] = p.Serverless
	}
	args := []string{"package", "--stage", "test", "--region", "us-east-1"}
	for _, name := range sortedKeys(values) {
		param, ok := bySAM[name]
		if !ok {
			return "", fmt.Errorf("parameter %s is not in deploy.Parameters", name)
		}
		args = append(args, "--param="+param+"="+values[name])
	}
	out, err := run(context.Background(), dir, offlineEnv(filepath.Join(dir, "home")), sls, args...)
	if err != nil {
		return out, fmt.Errorf("serverless %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// writeArtifact writes a zip holding an executable bootstrap, the shape
// `make package` builds.
func writeArtifact(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
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
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// readTemplate reads a CloudFormation JSON template.
func readTemplate(path string) (*template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tpl template
	if err := json.Unmarshal(b, &tpl); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(tpl.Resources) == 0 {
		return nil, errors.New(path + ": no resources")
	}
	return &tpl, nil
}
