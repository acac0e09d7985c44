package gitsync

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// remoteName is the clone's only remote.
const remoteName = "origin"

// Options say which branch of which repository to follow and how to authenticate.
type Options struct {
	// URL is file://, http://, https:// or ssh:// (also user@host:path), or a local path.
	URL string
	// Branch is the branch followed; empty means main.
	Branch string
	// Dir is where the clone is kept (created when missing).
	Dir string

	// Username and Password authenticate http(s): a token goes in Password (Username then defaults to
	// "git", which GitHub, GitLab and Gitea accept with a token).
	Username, Password string
	// CABundle are extra PEM certificates an https:// server's certificate may chain to (a private CA).
	CABundle []byte

	// SSHKeyFile is the private key for ssh:// (SSHKeyPassphrase when it is encrypted); SSHKnownHosts are
	// the known_hosts files the server's key must be in (empty: ~/.ssh/known_hosts and the system's).
	SSHKeyFile, SSHKeyPassphrase string
	SSHKnownHosts                []string
	// SSHUser is the ssh user when the URL names none (default "git").
	SSHUser string
}

// Commit describes one commit.
type Commit struct {
	Hash    string    `json:"hash"`
	Short   string    `json:"short"`
	Subject string    `json:"subject"`
	Author  string    `json:"author"`
	When    time.Time `json:"when"`
}

// Repo is one clone of one branch. It is not safe for concurrent use.
type Repo struct {
	opts    Options
	url     string // normalised URL
	display string // URL without credentials, for messages
	repo    *git.Repository
	auth    transport.AuthMethod
}

// Open opens the clone in opts.Dir, creating it when missing or when it follows another URL. Nothing
// is fetched: call Fetch.
func Open(opts Options) (*Repo, error) {
	if opts.Branch == "" {
		opts.Branch = "main"
	}
	u, err := normalizeURL(opts.URL)
	if err != nil {
		return nil, err
	}
	r := &Repo{opts: opts, url: u, display: Redact(u)}
	if r.auth, err = authFor(u, opts); err != nil {
		return nil, fmt.Errorf("repository %s: %w", r.display, err)
	}
	repo, err := git.PlainOpen(opts.Dir)
	if err == nil {
		if rem, rerr := repo.Remote(remoteName); rerr != nil || len(rem.Config().URLs) == 0 || rem.Config().URLs[0] != u {
			repo = nil // another repository's clone: start afresh
		}
	}
	if repo == nil {
		if err := os.RemoveAll(opts.Dir); err != nil {
			return nil, fmt.Errorf("clone %s: remove the old clone: %w", r.display, err)
		}
		if err := os.MkdirAll(filepath.Dir(opts.Dir), 0o700); err != nil {
			return nil, fmt.Errorf("clone %s: %w", r.display, err)
		}
		if repo, err = git.PlainInit(opts.Dir, true); err != nil {
			return nil, fmt.Errorf("clone %s: %w", r.display, err)
		}
		if _, err := repo.CreateRemote(&config.RemoteConfig{Name: remoteName, URLs: []string{u}}); err != nil {
			return nil, fmt.Errorf("clone %s: %w", r.display, err)
		}
	}
	r.repo = repo
	return r, nil
}

// URL is the repository's URL without credentials.
func (r *Repo) URL() string { return r.display }

// Branch is the branch followed.
func (r *Repo) Branch() string { return r.opts.Branch }

func (r *Repo) trackingRef() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName(remoteName, r.opts.Branch)
}

// Fetch fetches the branch and returns its head. A force-push is followed: the head is whatever the
// remote's branch points at now, whether or not it descends from the previous one.
func (r *Repo) Fetch(ctx context.Context) (Commit, error) {
	spec := config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", r.opts.Branch, r.trackingRef()))
	err := r.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{spec},
		Auth:       r.auth,
		Tags:       git.NoTags,
		Force:      true,
		CABundle:   r.opts.CABundle,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, git.NoMatchingRefSpecError{}), errors.Is(err, transport.ErrEmptyRemoteRepository):
		return Commit{}, fmt.Errorf("fetch %s: branch %q does not exist there; push it or start watch with --branch", r.display, r.opts.Branch)
	default:
		return Commit{}, fmt.Errorf("fetch %s: %s", r.display, redactErr(err, r.url))
	}
	return r.Head()
}

// Head returns the commit the branch pointed at when it was last fetched.
func (r *Repo) Head() (Commit, error) {
	ref, err := r.repo.Reference(r.trackingRef(), true)
	if err != nil {
		return Commit{}, fmt.Errorf("branch %q of %s has not been fetched", r.opts.Branch, r.display)
	}
	return r.Commit(ref.Hash().String())
}

// Commit describes a commit of the clone.
func (r *Repo) Commit(hash string) (Commit, error) {
	c, err := r.repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		return Commit{}, fmt.Errorf("commit %s: %w", hash, err)
	}
	return describe(c), nil
}

func describe(c *object.Commit) Commit {
	subject, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	h := c.Hash.String()
	return Commit{Hash: h, Short: h[:12], Subject: subject, Author: c.Author.Name, When: c.Committer.When.UTC()}
}

// Tree returns the commit's tree as a file system.
func (r *Repo) Tree(hash string) (*TreeFS, error) {
	c, err := r.repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", hash, err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("commit %s: read its tree: %w", hash, err)
	}
	return &TreeFS{tree: t}, nil
}

// normalizeURL turns a local path into a file:// URL and checks the scheme.
func normalizeURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("a repository URL or path is required (--repo)")
	}
	if ep, err := transport.NewEndpoint(raw); err == nil && ep.Protocol != "file" {
		switch ep.Protocol {
		case "http", "https", "ssh", "git":
			return raw, nil
		}
		return "", fmt.Errorf("repository %s: unsupported scheme %q; use file://, https://, http:// or ssh://", Redact(raw), ep.Protocol)
	}
	p := strings.TrimPrefix(raw, "file://")
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("repository %s: %w", raw, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("repository %s: %w", raw, err)
	}
	return "file://" + abs, nil
}

func authFor(u string, o Options) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(u)
	if err != nil {
		return nil, err
	}
	switch ep.Protocol {
	case "http", "https":
		if o.Password == "" && o.Username == "" {
			return nil, nil
		}
		user := o.Username
		if user == "" {
			user = "git"
		}
		return &githttp.BasicAuth{Username: user, Password: o.Password}, nil
	case "ssh":
		if o.SSHKeyFile == "" {
			return nil, errors.New("an ssh:// repository needs a private key (--ssh-key FILE)")
		}
		user := ep.User
		if user == "" {
			user = o.SSHUser
		}
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, o.SSHKeyFile, o.SSHKeyPassphrase)
		if err != nil {
			return nil, fmt.Errorf("ssh key %s: %w", o.SSHKeyFile, err)
		}
		cb, err := gitssh.NewKnownHostsCallback(o.SSHKnownHosts...)
		if err != nil {
			return nil, fmt.Errorf("known_hosts: %w; pass the file that holds the server's key with --ssh-known-hosts", err)
		}
		keys.HostKeyCallback = cb
		return keys, nil
	}
	return nil, nil
}

// Redact drops the user info (a token, a password) from a URL.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// redactErr is err's text with any credential in the URL removed.
func redactErr(err error, rawURL string) string {
	msg := err.Error()
	if red := Redact(rawURL); red != rawURL {
		msg = strings.ReplaceAll(msg, rawURL, red)
	}
	return msg
}

// WorkTree describes the git work tree a directory is in: the commit checked out, and whether files under
// the directory differ from it (changed, added or not yet committed).
type WorkTree struct {
	Commit string `json:"commit"`
	Branch string `json:"branch,omitempty"`
	// Dirty is true when files under the directory differ from Commit: the commit does not describe them.
	Dirty bool `json:"dirty,omitempty"`
}

// WorkTreeOf returns the work tree dir is in; ok is false when dir is in none (or the repository has no
// commit yet).
func WorkTreeOf(dir string) (wt WorkTree, ok bool, err error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return WorkTree{}, false, nil
	}
	if err != nil {
		return WorkTree{}, false, err
	}
	head, err := repo.Head()
	if err != nil {
		return WorkTree{}, false, nil // no commit yet
	}
	wt.Commit = head.Hash().String()
	if head.Name().IsBranch() {
		wt.Branch = head.Name().Short()
	}
	w, err := repo.Worktree()
	if err != nil {
		return wt, true, nil // a bare repository: nothing can differ
	}
	status, err := w.Status()
	if err != nil {
		return wt, true, fmt.Errorf("git status: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return wt, true, err
	}
	rel, err := filepath.Rel(w.Filesystem.Root(), abs)
	if err != nil {
		return wt, true, err
	}
	prefix := filepath.ToSlash(rel)
	for path, st := range status {
		if st.Worktree == git.Unmodified && st.Staging == git.Unmodified {
			continue
		}
		if prefix == "." || path == prefix || strings.HasPrefix(path, prefix+"/") {
			wt.Dirty = true
			break
		}
	}
	return wt, true, nil
}
