from stargan.cli import main

main()
