package main

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; set it exactly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestZipIsDeterministicWithUnixModes(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, filepath.Join(src, "bootstrap"), "#!/bin/sh\necho hi\n", 0o644) // exec bit lost: still 0755
	writeFile(t, filepath.Join(src, "tool"), "x", 0o700)
	writeFile(t, filepath.Join(src, "b", "data.json"), `{"a":1}`, 0o600)

	a, b := filepath.Join(dir, "out", "a.zip"), filepath.Join(dir, "b.zip")
	if err := run([]string{"-o", a, src}, "", io.Discard); err != nil {
		t.Fatal(err)
	}
	// Other times on disk must not matter.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(src, "tool"), later, later); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-o", b, src}, "", io.Discard); err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatal("two zips of the same files differ")
	}

	zr, err := zip.OpenReader(a)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	want := []struct {
		name string
		mode os.FileMode
		body string
	}{
		{"b/data.json", 0o644, `{"a":1}`},
		{"bootstrap", 0o755, "#!/bin/sh\necho hi\n"},
		{"tool", 0o755, "x"},
	}
	if len(zr.File) != len(want) {
		t.Fatalf("%d entries, want %d", len(zr.File), len(want))
	}
	for i, f := range zr.File {
		w := want[i]
		if f.Name != w.name {
			t.Errorf("entry %d is %q, want %q", i, f.Name, w.name)
		}
		if f.Mode() != w.mode {
			t.Errorf("%s: mode %v, want %v", f.Name, f.Mode(), w.mode)
		}
		if f.CreatorVersion>>8 != 3 {
			t.Errorf("%s: creator %d, want 3 (Unix), or the mode is ignored", f.Name, f.CreatorVersion>>8)
		}
		if !f.Modified.Equal(zipEpoch) {
			t.Errorf("%s: modified %v, want %v", f.Name, f.Modified, zipEpoch)
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if string(got) != w.body {
			t.Errorf("%s: content %q, want %q", f.Name, got, w.body)
		}
	}
}

func TestSourceDateEpoch(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "src", "bootstrap"), "x", 0o755)
	out := filepath.Join(dir, "a.zip")
	if err := run([]string{"-o", out, filepath.Join(dir, "src")}, "1700000000", io.Discard); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if got := zr.File[0].Modified; !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("modified %v, want SOURCE_DATE_EPOCH", got)
	}
	if err := run([]string{"-o", out, filepath.Join(dir, "src")}, "yesterday", io.Discard); err == nil {
		t.Error("a bad SOURCE_DATE_EPOCH was accepted")
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	writeFile(t, filepath.Join(link, "bootstrap"), "x", 0o755)
	if err := os.Symlink("bootstrap", filepath.Join(link, "alias")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no output", []string{empty}, "want -o"},
		{"no directory", []string{"-o", filepath.Join(dir, "x.zip")}, "want -o"},
		{"missing directory", []string{"-o", filepath.Join(dir, "x.zip"), filepath.Join(dir, "nope")}, "no such file"},
		{"empty directory", []string{"-o", filepath.Join(dir, "x.zip"), empty}, "no files"},
		{"symlink", []string{"-o", filepath.Join(dir, "x.zip"), link}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, "", io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			if _, statErr := os.Stat(filepath.Join(dir, "x.zip")); statErr == nil {
				t.Error("a zip was written despite the error")
			}
		})
	}
}
