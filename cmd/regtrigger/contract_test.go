package main

// The CLI contract, checked for every command by walking the cobra tree, so
// that a new command is covered as soon as it is added: its --help output
// (golden files, refreshed with go test -update), the exit codes of the
// README's table, and flag help that reads cleanly.

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// allCommands is every command of the tree, the root first, parents before
// their subcommands, in the tree's (sorted) order.
func allCommands() []*cobra.Command {
	var out []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		out = append(out, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot(strings.NewReader(""), io.Discard, io.Discard))
	return out
}

// argsOf is the command line of c without the program name.
func argsOf(c *cobra.Command) []string {
	return strings.Fields(c.CommandPath())[1:]
}

const helpDir = "testdata/golden/help"

// helpFile is the golden file of c's help: regtrigger-triggers-apply.txt.
func helpFile(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "-") + ".txt"
}

// TestHelpGolden compares every command's --help with its golden file.
// After adding or changing a command, run go test -run TestHelpGolden
// -update ./cmd/regtrigger and read the diff; -update also removes the
// files of commands that are gone.
func TestHelpGolden(t *testing.T) {
	want := map[string]bool{}
	for _, c := range allCommands() {
		name := helpFile(c)
		want[name] = true
		t.Run(c.CommandPath(), func(t *testing.T) {
			code, out, errs := cliRun(t, "", append(argsOf(c), "--help")...)
			if code != exitOK || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			golden(t, filepath.Join("help", name), out)
		})
	}
	files, err := os.ReadDir(helpDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if want[f.Name()] {
			continue
		}
		if *update {
			if err := os.Remove(filepath.Join(helpDir, f.Name())); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s/%s belongs to no command (run go test -update to remove it)", helpDir, f.Name())
	}
}

// varName is what a flag's help line shows after the flag: pflag takes the
// first back-quoted word of the usage (so a back-quoted phrase garbles the
// line), else the type's name.
var varName = regexp.MustCompile(`^[A-Z][A-Z0-9_:.]*(\.\.\.)?$|^(string|int|duration|stringArray|durationSlice|bool)?$`)

// TestFlagHelpReadsCleanly: every flag's value name is a word in capitals
// (or pflag's type name), and its usage has no back quote left in it.
func TestFlagHelpReadsCleanly(t *testing.T) {
	for _, c := range allCommands() {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			name, usage := pflag.UnquoteUsage(f)
			if !varName.MatchString(name) {
				t.Errorf("%s --%s shows %q as its value name (a back-quoted phrase in the usage?)", c.CommandPath(), f.Name, name)
			}
			if strings.Contains(usage, "`") {
				t.Errorf("%s --%s: usage %q keeps a back quote", c.CommandPath(), f.Name, usage)
			}
			if usage == "" {
				t.Errorf("%s --%s has no help", c.CommandPath(), f.Name)
			}
		})
	}
}

// TestExitCodesEveryCommand: for every command, --help succeeds, and an
// unknown flag or surplus arguments are usage errors (2) that do nothing
// and point to the command's help.
func TestExitCodesEveryCommand(t *testing.T) {
	for _, c := range allCommands() {
		args := argsOf(c)
		t.Run(c.CommandPath(), func(t *testing.T) {
			if c.Runnable() && c.Args == nil && c.Name() != "help" && !c.HasSubCommands() {
				t.Fatal("declares no Args: surplus arguments would run the command (use cobra.NoArgs, ExactArgs, ...)")
			}
			tests := []struct {
				name string
				args []string
				code int
			}{
				{"help", append(slices.Clone(args), "--help"), exitOK},
				{"unknown flag", append(slices.Clone(args), "--no-such-flag"), exitUsage},
			}
			if c.Name() != "help" { // help takes any topic
				tests = append(tests, struct {
					name string
					args []string
					code int
				}{"surplus arguments", append(slices.Clone(args), "x1", "x2", "x3", "x4", "x5"), exitUsage})
			}
			for _, tt := range tests {
				code, _, errs := cliRun(t, "", tt.args...)
				if code != tt.code {
					t.Errorf("%s: regtrigger %s: exit %d, want %d (stderr %q)", tt.name, strings.Join(tt.args, " "), code, tt.code, errs)
				}
				if tt.code == exitUsage && !strings.Contains(errs, "(see regtrigger") {
					t.Errorf("%s: a usage error should point to --help: %q", tt.name, errs)
				}
			}
		})
	}
}
