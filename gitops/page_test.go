package gitops_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStatusPageInChromium opens the status page in a real headless Chromium: it shows every app and
// the applied commit, and, refreshing itself, the next commit after a push. A screenshot is written to
// the path the test logs.
func TestStatusPageInChromium(t *testing.T) {
	t.Parallel()
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (.ci/run installs it)")
	}
	repo := newRepo(t)
	fleet := uniqueFleet(t)
	files := fleetFiles(fleet, "heal", map[string]string{"crm": "", "shop": ""})
	c1 := repo.commit("two apps", files)
	w := startWatch(t, "", nil, "--repo", repo.dir, "--path", "fleet", "--interval", "1s")
	w.waitFor("the first commit applied", appliedIs(c1))

	ctx, cancel := chromedp.NewContext(t.Context(), chromedp.WithAllocatorOptions(
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000)))
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, waitLong)
	defer cancelTimeout()

	// text reads an element's text. The page refreshes itself by replacing its content, so a node
	// found a moment ago may be gone when its text is asked for ("No node with given id found"):
	// that read is tried again.
	text := func(selector string) string {
		t.Helper()
		deadline := time.Now().Add(waitLong)
		for {
			s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(selector)))
			if err == nil {
				return s
			}
			require.True(t, time.Now().Before(deadline), "read %s: %v", selector, err)
			time.Sleep(50 * time.Millisecond)
		}
	}

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(w.url("/"))))
	apps := text("#apps")
	assert.Contains(t, apps, "crm")
	assert.Contains(t, apps, "shop")
	applied := text("#applied")
	assert.Contains(t, applied, c1[:12])
	assert.Contains(t, applied, "two apps")
	assert.Equal(t, "synced", strings.TrimSpace(text("#health")))

	// A push: the page, which refreshes itself, shows the new commit and the new app without being
	// navigated again.
	files["fleet/apps/wiki.yaml"] = str(appYAML("wiki", ""))
	c2 := repo.commit("a third app", files)
	deadline := time.Now().Add(waitLong)
	for {
		applied = text("#applied")
		if strings.Contains(applied, c2[:12]) {
			break
		}
		require.True(t, time.Now().Before(deadline), "the page still shows %q", applied)
		time.Sleep(250 * time.Millisecond)
	}
	assert.Contains(t, text("#apps"), "wiki")
	assert.Contains(t, text("#plan"), "+ app.wiki")

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	dir := os.Getenv("APPFLEET_SCREENSHOT_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "appfleet-watch-status.png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("status page screenshot: %s", path)
}
