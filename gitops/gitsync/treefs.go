package gitsync

import (
	"io"
	"io/fs"
	"path"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// TreeFS is a commit's tree as a read-only fs.FS. Regular files read as their blob; directories list
// their entries; symbolic links and submodules are listed with their own modes and not followed.
type TreeFS struct {
	tree *object.Tree
}

var _ fs.FS = (*TreeFS)(nil)

// Open opens a file or directory of the tree.
func (t *TreeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return &treeDir{info: treeInfo{name: ".", mode: fs.ModeDir | 0o555}, tree: t.tree}, nil
	}
	e, err := t.tree.FindEntry(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	info := entryInfo(e, path.Base(name))
	switch {
	case e.Mode == filemode.Dir:
		sub, err := t.tree.Tree(name)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &treeDir{info: info, tree: sub}, nil
	case e.Mode.IsFile():
		f, err := t.tree.TreeEntryFile(e)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		rd, err := f.Reader()
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		info.size = f.Size
		return &treeFile{info: info, rc: rd}, nil
	default:
		return &treeFile{info: info}, nil // a submodule: listed, never read
	}
}

// entryInfo describes a tree entry; the size of a blob is read when it is opened.
func entryInfo(e *object.TreeEntry, name string) treeInfo {
	switch {
	case e.Mode == filemode.Dir:
		return treeInfo{name: name, mode: fs.ModeDir | 0o555}
	case e.Mode == filemode.Symlink:
		return treeInfo{name: name, mode: fs.ModeSymlink | 0o444}
	case e.Mode == filemode.Submodule:
		return treeInfo{name: name, mode: fs.ModeIrregular}
	case e.Mode == filemode.Executable:
		return treeInfo{name: name, mode: 0o555}
	default:
		return treeInfo{name: name, mode: 0o444}
	}
}

type treeInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (i treeInfo) Name() string       { return i.name }
func (i treeInfo) Size() int64        { return i.size }
func (i treeInfo) Mode() fs.FileMode  { return i.mode }
func (i treeInfo) ModTime() time.Time { return time.Time{} }
func (i treeInfo) IsDir() bool        { return i.mode.IsDir() }
func (i treeInfo) Sys() any           { return nil }

type treeFile struct {
	info treeInfo
	rc   io.ReadCloser
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *treeFile) Read(b []byte) (int, error) {
	if f.rc == nil {
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: fs.ErrInvalid}
	}
	return f.rc.Read(b)
}

func (f *treeFile) Close() error {
	if f.rc == nil {
		return nil
	}
	return f.rc.Close()
}

type treeDir struct {
	info treeInfo
	tree *object.Tree
	off  int
}

func (d *treeDir) Stat() (fs.FileInfo, error) { return d.info, nil }

func (d *treeDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: fs.ErrInvalid}
}

func (d *treeDir) Close() error { return nil }

// ReadDir lists the directory's entries in the tree's order.
func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	entries := d.tree.Entries[d.off:]
	if n > 0 && len(entries) > n {
		entries = entries[:n]
	}
	if n > 0 && len(entries) == 0 {
		return nil, io.EOF
	}
	out := make([]fs.DirEntry, len(entries))
	for i := range entries {
		out[i] = fs.FileInfoToDirEntry(entryInfo(&entries[i], entries[i].Name))
	}
	d.off += len(entries)
	return out, nil
}
