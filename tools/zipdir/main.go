// Command zipdir writes a deterministic zip of the files under a directory:
// the Lambda deployment packages of `make package` (dist/receiver.zip,
// dist/dispatcher.zip, each holding one bootstrap executable) and the SCF
// ones of `make build-scf` (dist/scf/*.zip, each holding main).
//
// Entries are the regular files under DIR, named by their slash-separated
// path relative to it, in byte order, without directory entries. Every entry
// has the same modification time (SOURCE_DATE_EPOCH when set, otherwise
// 1980-01-01 UTC, the earliest time a zip can hold) and Unix permissions:
// 0755 for "bootstrap" and any file with an execute bit, 0644 otherwise, so
// Lambda can execute bootstrap whatever file system the build ran on. The same
// input therefore gives the same bytes, and the zip command is not needed.
//
// Usage:
//
//	go run ./tools/zipdir -o dist/receiver.zip dist/receiver
package main

import (
	"archive/zip"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// zipEpoch is the earliest time the MS-DOS date fields of a zip can hold.
var zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	if err := run(os.Args[1:], os.Getenv("SOURCE_DATE_EPOCH"), os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "zipdir:", err)
		os.Exit(1)
	}
}

func run(args []string, sourceDateEpoch string, stderr io.Writer) error {
	fl := flag.NewFlagSet("zipdir", flag.ContinueOnError)
	fl.SetOutput(stderr)
	out := fl.String("o", "", "the zip file to write (required)")
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: zipdir -o OUT.zip DIR")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *out == "" || fl.NArg() != 1 {
		fl.Usage()
		return errors.New("want -o OUT.zip and one directory")
	}
	mtime := zipEpoch
	if sourceDateEpoch != "" {
		sec, err := strconv.ParseInt(sourceDateEpoch, 10, 64)
		if err != nil || sec < zipEpoch.Unix() {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: want Unix seconds from %d on", sourceDateEpoch, zipEpoch.Unix())
		}
		mtime = time.Unix(sec, 0).UTC()
	}
	return zipDir(*out, fl.Arg(0), mtime)
}

// file is one entry to write.
type file struct {
	name string // slash-separated, relative to the directory
	path string
	mode fs.FileMode
}

// zipDir writes the zip of dir's regular files to dst, atomically (a
// temporary file in dst's directory, renamed when complete).
func zipDir(dst, dir string, mtime time.Time) error {
	files, err := list(dir)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("%s: no files to zip", dir)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	zw := zip.NewWriter(tmp)
	for _, f := range files {
		if err := add(zw, f, mtime); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := zw.Close(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return os.Rename(tmp.Name(), dst)
}

// list returns dir's regular files in name order. Anything else but a
// directory (a symlink, a device) is an error: a deployment package should
// hold exactly what the build wrote.
func list(dir string) ([]file, error) {
	var files []file
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", path)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if info.Mode().Perm()&0o111 != 0 || d.Name() == "bootstrap" {
			mode = 0o755
		}
		files = append(files, file{name: filepath.ToSlash(rel), path: path, mode: mode})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files, nil
}

func add(zw *zip.Writer, f file, mtime time.Time) error {
	h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: mtime}
	h.SetMode(f.mode) // also marks the entry as made on Unix, so the mode is honoured
	w, err := zw.CreateHeader(h)
	if err != nil {
		return fmt.Errorf("add %s: %w", f.name, err)
	}
	r, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("add %s: %w", f.name, err)
	}
	return nil
}
