"""Runs Airbyte's source-facebook-marketing against the Graph API at $GRAPH_URL.

Usage: GRAPH_URL=http://127.0.0.1:8080 python airbyte_launcher.py read --config C --catalog K

The Facebook SDK builds every URL from the class attribute `FacebookSession.GRAPH`
(`https://graph.facebook.com`), so pointing that attribute at the simulator is all it takes;
absolute `paging.next` links are followed as given, which is why the simulator is started with
`--public-url`. Everything else is the connector's own entry point, unchanged.
"""

import os
import sys

from facebook_business.session import FacebookSession


def main() -> None:
    FacebookSession.GRAPH = os.environ["GRAPH_URL"].rstrip("/")
    from source_facebook_marketing.run import run

    run()


if __name__ == "__main__":
    sys.exit(main())
