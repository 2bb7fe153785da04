from ecrin.cli import main

main()
