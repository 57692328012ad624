"""The dashboard in a real browser: headless Chromium driven by Selenium.

Run by tests/integration/dashboard.rs, which starts `wf serve` (and a local service the
workflow `relay` calls: its first call fails, the next ones succeed) and passes, in the
environment:
  WF_MAIN    the webhook listener, http://127.0.0.1:PORT
  WF_ADMIN   the admin listener, on loopback, no token
  WF_GUARDED the admin listener of a second server bound off loopback, with a token
  WF_TOKEN   that token
  WF_LABELS  the relay graph's node labels (JSON), as `wf graph --format dot` writes them
  WF_SHOTS   where to write screenshots (PAGE-WIDTH.png)
Prints one line per check; exits non-zero at the first that fails.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

MAIN = os.environ["WF_MAIN"]
ADMIN = os.environ["WF_ADMIN"]
GUARDED = os.environ["WF_GUARDED"]
TOKEN = os.environ["WF_TOKEN"]
LABELS = json.loads(os.environ["WF_LABELS"])
SHOTS = os.environ["WF_SHOTS"]
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def check(ok, what):
    if not ok:
        print("FAILED: " + what, flush=True)
        sys.exit(1)
    print("ok: " + what, flush=True)


def post(path, body, headers=None):
    req = urllib.request.Request(MAIN + path, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers["x-wf-execution"]


def status_of(url, data=None, headers=None):
    """The status an HTTP request gets, redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with opener.open(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1440,1000"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def shoot(driver, name):
    """The page at 375 and 1440 px wide, whole."""
    for width in (375, 1440):
        driver.set_window_size(width, 1000)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(max(height + 120, 700), 4000))
        driver.save_screenshot(os.path.join(SHOTS, f"{name}-{width}.png"))
    driver.set_window_size(1440, 1000)


def no_alert(driver):
    try:
        driver.switch_to.alert
        return False
    except NoAlertPresentException:
        return True


def until(driver, condition, what, timeout=15):
    def holds(d):
        # A page that is being replaced may drop the element being read: look again.
        try:
            return condition(d)
        except WebDriverException:
            return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(holds)
    except Exception:
        check(False, what + " (at " + driver.current_url + ": " + driver.find_element(By.TAG_NAME, "body").text[:400] + ")")


def badge(driver):
    return driver.find_element(By.CSS_SELECTOR, "h1 .badge").text


def main():
    driver = browser()
    try:
        # The list shows a run that just arrived, without a reload.
        driver.get(ADMIN + "/")
        until(driver, lambda d: d.find_element(By.ID, "runs").get_attribute("data-watching") == "yes",
              "the runs page watches for new runs")
        first = post("/orders", {"name": "first"})
        until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-id="{first}"]'),
              "a run that just arrived is listed without a reload")
        check(driver.execute_script("return performance.getEntriesByType('navigation').length") == 1,
              "the page was not reloaded")

        # A relay run that fails (its service's first answer is 503), and hostile text.
        relay = post("/relay", {"order": 7})
        until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-id="{relay}"]'),
              "the relay run is listed live")
        for name in ("ada", "grace", "linus"):
            post("/orders", {"name": name})
        until(driver, lambda d: d.get(ADMIN + "/") or len(d.find_elements(By.CSS_SELECTOR, "#runs tbody tr")) >= 5,
              "the runs page lists every run kept")
        shoot(driver, "runs")
        # Dark mode follows the system's: the page's background turns dark.
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                               {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        channels = [int(c) for c in background[background.index("(") + 1:-1].split(",")[:3]]
        check(sum(channels) < 150, f"in dark mode the page is dark ({background})")
        driver.save_screenshot(os.path.join(SHOTS, "runs-dark-1440.png"))
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        channels = [int(c) for c in background[background.index("(") + 1:-1].split(",")[:3]]
        check(sum(channels) > 600, f"in light mode the page is light ({background})")

        # Filters narrow the list.
        driver.get(ADMIN + "/")
        Select(driver.find_element(By.NAME, "workflow")).select_by_value("relay")
        driver.find_element(By.CSS_SELECTOR, "form.filters button").click()
        until(driver, lambda d: "workflow=relay" in d.current_url, "the filter form goes to its page")
        rows = driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
        names = {r.find_elements(By.TAG_NAME, "td")[2].text for r in rows}
        check(rows and names == {"relay"}, f"the workflow filter lists only relay's runs ({names})")
        Select(driver.find_element(By.NAME, "status")).select_by_value("failed")
        driver.find_element(By.CSS_SELECTOR, "form.filters button").click()
        until(driver, lambda d: "status=failed" in d.current_url, "the status filter goes to its page")
        ids = [r.get_attribute("data-id") for r in driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")]
        check(ids == [relay], f"relay and failed: the one failed run ({ids})")

        # A run page shows its steps, its failure, and retry makes it complete.
        driver.get(ADMIN + "/runs/" + relay)
        until(driver, lambda d: "failed" in badge(d), "the run page shows the run failed")
        steps = driver.find_elements(By.CSS_SELECTOR, "ol.timeline li.step")
        check(any("http" in s.text for s in steps), "the run page shows its http step")
        check("the service answered 503" in driver.find_element(By.CSS_SELECTOR, ".failure").text,
              "the run page says why it failed")
        link = driver.find_element(By.CSS_SELECTOR, ".failure a")
        check("#L" in link.get_attribute("href"), "the failure's place links to the source line")
        shoot(driver, "run")
        driver.find_element(By.ID, "retry").click()
        until(driver, lambda d: "done=retry" in d.current_url, "retry goes back to the run")

        def completed(d):
            d.refresh()
            return "completed" in badge(d)

        until(driver, completed, "after retry from the page the run completes", timeout=20)
        check(no_alert(driver), "no alert")

        # A POST without the CSRF token is refused.
        driver.get(ADMIN + "/runs/" + relay)
        driver.execute_script("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
        driver.find_element(By.ID, "replay").click()
        until(driver, lambda d: "Refused" in d.find_element(By.TAG_NAME, "h1").text,
              "a form sent without its CSRF token is refused")
        check(status_of(ADMIN + f"/runs/{relay}/retry", data=b"") == 403, "a POST without the token gets 403")

        # Replay with its difference.
        driver.get(ADMIN + "/runs/" + relay)
        driver.find_element(By.ID, "replay").click()
        until(driver, lambda d: d.find_elements(By.ID, "verdict"), "replay shows its verdict")

        # Hostile text in every field shows as text.
        hostile = post("/orders?note=" + urllib.request.quote(HOSTILE), {"name": HOSTILE}, {"X-Note": HOSTILE})
        until(driver, lambda d: d.get(ADMIN + "/runs/" + hostile) or "responded" in badge(d),
              "the hostile run's page")
        page = driver.find_element(By.TAG_NAME, "main").text
        check("<script>alert(1)</script>" in page, "the hostile body shows as text")
        check(not driver.find_elements(By.CSS_SELECTOR, "main script, img[src=x], main img"),
              "no element was made from the hostile text")
        check(no_alert(driver), "no alert on the run page")
        driver.get(ADMIN + "/")
        until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-id="{hostile}"]'),
              "the hostile run is listed")
        check(not driver.find_elements(By.CSS_SELECTOR, "img[src=x]") and no_alert(driver),
              "the list makes no element of it either")

        # The workflow page, and its graph rendered: the labels wf graph writes, nodes apart.
        driver.get(ADMIN + "/workflows/relay")
        until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".graph img"), "the workflow page shows its graph")
        check(driver.execute_script(
            "const i = document.querySelector('.graph img'); return i.complete && i.naturalWidth > 0"),
            "the graph image loads")
        check(driver.find_elements(By.ID, "L1"), "the source's lines are linkable")
        shoot(driver, "workflow")
        driver.get(ADMIN + "/workflows/relay/graph.svg")
        nodes = driver.find_elements(By.CSS_SELECTOR, "g.node")
        shown = [[t.text for t in n.find_elements(By.TAG_NAME, "text")] for n in nodes]
        check(shown == LABELS, f"the SVG's node labels are wf graph's ({shown} vs {LABELS})")
        boxes = [n.find_element(By.TAG_NAME, "rect").rect for n in nodes]

        def apart(a, b):
            return (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                    or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])

        check(all(apart(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]),
              "no two nodes overlap as rendered")

        # Off loopback the token is required: the login form sets the cookie.
        check(status_of(GUARDED + "/") == 303, "off loopback, a page without the token goes to the login form")
        check(status_of(GUARDED + "/metrics") == 401, "off loopback, /metrics without the token gets 401")
        check(status_of(GUARDED + "/metrics", headers={"Authorization": "Bearer " + TOKEN}) == 200,
              "the token as a bearer opens /metrics")
        check(status_of(GUARDED + "/healthz") == 200, "/healthz stays open")
        driver.get(GUARDED + "/workflows")
        until(driver, lambda d: "/login" in d.current_url, "the browser is sent to the login form")
        shoot(driver, "login")
        driver.find_element(By.ID, "token").send_keys("not-the-token")
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        until(driver, lambda d: "not the admin token" in d.page_source, "a wrong token is refused")
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        until(driver, lambda d: d.current_url.endswith("/workflows"), "the right token goes on to the page asked for")
        cookie = driver.get_cookie("wf_admin")
        check(cookie and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict",
              f"the cookie is HttpOnly and SameSite=Strict ({cookie})")
        check(TOKEN not in cookie["value"], "the cookie does not hold the token")
    finally:
        driver.quit()


main()
