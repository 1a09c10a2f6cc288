from eventgateway.cli.main import main

main()
