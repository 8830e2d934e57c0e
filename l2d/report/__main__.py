from l2d.report.cli import main

main()
