// Package safefile reads files with a size bound and writes them atomically.
//
// WriteAtomic writes to a temporary file in the destination's directory,
// syncs it, sets its mode and renames it over the destination, then syncs
// the directory, so a reader (or a process that crashes and restarts) sees
// the old file or the new one, never a part. On failure nothing is left
// behind. ReadLimited refuses files larger than the caller's bound before
// reading more than one byte past it.
//
// Errors are plain *os.PathError values or ErrTooLarge; callers wrap them in
// the error class that fits their context.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrTooLarge is returned by ReadLimited for a file over the limit.
var ErrTooLarge = errors.New("file larger than the limit")

// ReadLimited reads the file at path if it holds at most limit bytes.
func ReadLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (%d bytes)", path, ErrTooLarge, limit)
	}
	return data, nil
}

// WriteAtomic replaces the file at path with data and mode perm.
func WriteAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Make the rename durable; not every platform can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
