from reelscale.cli import main

main()
