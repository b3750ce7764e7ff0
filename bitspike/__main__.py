from bitspike.cli import main

raise SystemExit(main())
