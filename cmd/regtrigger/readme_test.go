package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeTourIsComplete: the README's tour names every package
// directory of the module and every tool under tools/, so a newcomer can
// find each, and the README links nothing outside the project.
func TestReadmeTourIsComplete(t *testing.T) {
	const root = "../.."
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, tour, ok := strings.Cut(string(readme), "## Tour\n\n```\n")
	if tour, _, _ = strings.Cut(tour, "```"); !ok || tour == "" {
		t.Fatal("README.md has no tour (## Tour followed by a code block)")
	}
	named := map[string]bool{}
	for _, line := range strings.Split(tour, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			named[strings.TrimSuffix(f[0], "/")] = true
		}
	}
	want := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata", "bin", "dist", ".aws-sam":
				return filepath.SkipDir
			}
			if dir, _ := filepath.Split(rel); dir == "tools/" {
				want[rel] = true
			}
			return nil
		}
		if strings.HasSuffix(rel, ".go") {
			want[filepath.ToSlash(filepath.Dir(rel))] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range want {
		if !named[dir] {
			t.Errorf("the README's tour does not name %s/", dir)
		}
	}
	for _, link := range regexp.MustCompile(`\]\(([^)#]+)`).FindAllStringSubmatch(string(readme), -1) {
		target := link[1]
		if strings.Contains(target, "://") {
			continue
		}
		if strings.HasPrefix(target, "..") {
			t.Errorf("README.md links %s, outside the project: a clone does not have it", target)
			continue
		}
		if _, err := os.Stat(filepath.Join(root, target)); err != nil {
			t.Errorf("README.md links %s: %v", target, err)
		}
	}
}
