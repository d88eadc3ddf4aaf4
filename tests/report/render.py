# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render report pages in headless Chromium (Debian's `chromium`), as an admin's browser would.

render(path)      -> {'dom': the DOM after rendering, 'text': its visible text,
                      'requests': what the page asked for, 'chromium_own': Chromium's own requests}
screenshot(path, png, width, height)

Chromium talks only to a recording proxy of ours on 127.0.0.1 (every scheme,
loopback included), which answers nothing: any URL a page tries to load -
a stylesheet, a font, an image, a script - shows up in `requests`, and
nothing leaves the machine. Chromium's own background traffic is switched
off, and its profile lives in a temporary directory (root's home is not
touched).

Command line: python3 render.py dump PAGE | python3 render.py screenshot PAGE PNG [WIDTH HEIGHT]
"""

from __future__ import annotations

import html.parser
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

CHROMIUM_FLAGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-extensions',
    '--disable-default-apps', '--disable-domain-reliability', '--disable-client-side-phishing-detection', '--no-pings',
    '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,NetworkTimeServiceQuerying,'
    'AutofillServerCommunication,CertificateTransparencyComponentUpdater',
    '--hide-scrollbars', '--mute-audio', '--virtual-time-budget=3000',
]


# Chromium's own background traffic (its component updater, sign-in), which
# no flag of this version silences: not the page's, so listed apart.
CHROMIUM_OWN_HOSTS = ('update.googleapis.com', 'accounts.google.com', 'clients2.google.com')


def _host(request):
    """The host a proxy request line names (CONNECT host:port, or GET http://host/...)."""
    target = request.split(' ', 1)[1]
    if '://' in target:
        target = target.split('://', 1)[1]
    return target.split('/', 1)[0].rsplit(':', 1)[0]


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A proxy that records each request and answers 404 (CONNECT: 403)."""

    requests = None  # set per server

    def _record(self):
        self.server.requests.append('%s %s' % (self.command, self.path))
        self.send_response(403 if self.command == 'CONNECT' else 404)
        self.send_header('Content-Length', '0')
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_CONNECT = do_OPTIONS = _record

    def log_message(self, *args):
        pass


def chromium():
    path = shutil.which('chromium') or shutil.which('chromium-browser')
    if not path:
        raise RuntimeError("chromium is not installed (Debian's package: chromium; tests/lab/system-deps.sh)")
    return path


def _run(args, timeout=120):
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Recorder)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    profile = tempfile.mkdtemp(prefix='phyllome-chromium-')
    try:
        proxy = 'http://127.0.0.1:%d' % server.server_address[1]
        env = dict(os.environ, HOME=profile, XDG_CONFIG_HOME=profile, XDG_CACHE_HOME=profile)
        done = subprocess.run(
            [chromium()] + CHROMIUM_FLAGS + ['--user-data-dir=' + os.path.join(profile, 'profile'),
                                             '--proxy-server=' + proxy, '--proxy-bypass-list=<-loopback>'] + args,
            capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if done.returncode != 0:
            raise RuntimeError('chromium failed (%d): %s' % (done.returncode, done.stderr[-2000:]))
        return done.stdout, list(server.requests)
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(profile, ignore_errors=True)


class _Text(html.parser.HTMLParser):
    """The visible text of a DOM (no head, style or script), whitespace collapsed."""

    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ('head', 'style', 'script', 'title'):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ('head', 'style', 'script', 'title') and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def visible_text(dom):
    parser = _Text()
    parser.feed(dom)
    return ' '.join(' '.join(parser.parts).split())


def render(path):
    dom, requests = _run(['--dump-dom', 'file://' + os.path.abspath(path)])
    own = [r for r in requests if _host(r) in CHROMIUM_OWN_HOSTS]
    return {'dom': dom, 'text': visible_text(dom), 'requests': [r for r in requests if r not in own], 'chromium_own': own}


def screenshot(path, png, width=1280, height=900):
    _run(['--screenshot=' + os.path.abspath(png), '--window-size=%d,%d' % (width, height),
          'file://' + os.path.abspath(path)])
    return png


def main(argv):
    if len(argv) >= 2 and argv[0] == 'dump':
        result = render(argv[1])
        json.dump({'text': result['text'], 'requests': result['requests']}, sys.stdout, indent=1)
        print()
        return 0
    if len(argv) in (3, 5) and argv[0] == 'screenshot':
        screenshot(argv[1], argv[2], *(int(v) for v in argv[3:]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
